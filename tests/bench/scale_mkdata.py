#!/usr/bin/env python3
"""scale_mkdata.py - build a large data directory offline for scale_bench.sh.

    scale_mkdata.py TEMPLATE_DATA_DIR OUT_DATA_DIR TOPICS PARTITIONS

TEMPLATE_DATA_DIR holds one topic "t" with one partition "0" that a real
fluxfs mount made and unmounted cleanly (one message).  Its partition files
(segment, index, partition.state) are copied into TOPICS topics of
PARTITIONS partitions each, without fsync: creating 100,000 partitions
through the mount would take minutes of fsyncs, and the bench measures the
mount, not the making.  Every topic and partition gets an inode number of
its own in its topic.meta / partition.meta ("ino=N", the registry's meta
format, the other keys left to their defaults) and fluxfs.meta's bound is
raised above them, as the daemon would have.
"""
import os
import sys


def main():
    tmpl, out, ntopics, nparts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pdir = os.path.join(tmpl, "t", "0")
    files = {}
    for name in os.listdir(pdir):
        if name == "partition.meta":
            continue
        with open(os.path.join(pdir, name), "rb") as f:
            files[name] = f.read()
    os.makedirs(out)
    ino = 16  # LAYOUT_INO_FIRST
    for t in range(ntopics):
        tdir = os.path.join(out, "topic%04d" % t)
        os.mkdir(tdir)
        with open(os.path.join(tdir, "topic.meta"), "w") as f:
            f.write("ino=%d\n" % ino)
        ino += 1
        for p in range(nparts):
            d = os.path.join(tdir, str(p))
            os.mkdir(d)
            for name, data in files.items():
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            with open(os.path.join(d, "partition.meta"), "w") as f:
                f.write("ino=%d\n" % ino)
            ino += 1
    with open(os.path.join(out, "fluxfs.meta"), "w") as f:
        f.write("format=2\nino_next=%d\n" % (ino + 1024))
    # What a clean unmount leaves: stat may trust partition.state.
    with open(os.path.join(out, ".fluxfs.clean"), "w") as f:
        f.write("clean\n")


if __name__ == "__main__":
    main()
