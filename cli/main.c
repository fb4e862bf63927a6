/* main.c - placeholder entry; replaced by the command dispatcher. */
#include <stdio.h>
int main(void) { return 0; }
