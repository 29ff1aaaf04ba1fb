/* conformance.c - placeholder until the runner lands. */
int main(void)
{
    return 0;
}
