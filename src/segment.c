/* segment.c - placeholder until its module lands. */
#include "segment.h"
