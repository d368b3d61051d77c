/* partition.c - placeholder until its module lands. */
#include "partition.h"
