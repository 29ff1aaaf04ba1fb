/*
 * main.c - the capstan command: dispatches subcommands (placeholder until the CLI lands).
 */
#include <stdio.h>

int main(void)
{
    printf("capstan %s\n", CS_VERSION);
    return 0;
}
