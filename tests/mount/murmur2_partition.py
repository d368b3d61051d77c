#!/usr/bin/env python3
# murmur2_partition.py N - for each key on stdin (one per line), print the
# partition Kafka's default partitioner picks among N: toPositive(murmur2
# (key)) % N.  Written from the algorithm in Kafka's Utils.murmur2, apart
# from fluxfs's C code, so the mount tests check the daemon's placement
# against a second implementation (and it against Kafka's test vectors,
# below, on every run).
import sys


def murmur2(data):
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = data[4 * n4:]
    if len(rest) >= 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if len(rest) >= 1:
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def signed(h):
    return h - (1 << 32) if h & 0x80000000 else h


def partition(key, n):
    return (murmur2(key) & 0x7FFFFFFF) % n


# Kafka's UtilsTest.testMurmur2, checked whenever this is loaded.
for key, want in ((b"21", -973932308), (b"foobar", -790332482),
                  (b"a-little-bit-long-string", -985981536),
                  (b"abc", 479470107)):
    if signed(murmur2(key)) != want:
        sys.exit("murmur2_partition.py: murmur2(%r) is wrong" % key)

if __name__ == "__main__":
    n = int(sys.argv[1])
    for line in sys.stdin.buffer:
        print(partition(line.rstrip(b"\n"), n))
