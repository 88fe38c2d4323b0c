/* hb-admit-script: prints the admission script of common/plays.c, so the benchmark's Node.js
 * peer and redis-benchmark run exactly the atomic step hb-api runs (no copy by hand). */
#include "plays.h"

#include <stdio.h>

int main(void)
{
    return fputs(hb_plays_admit_script(), stdout) < 0 ? 1 : 0;
}
