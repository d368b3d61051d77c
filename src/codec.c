/* codec.c - placeholder until its module lands. */
#include "codec.h"
