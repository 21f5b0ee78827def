/* layer_check.c — the program of meson.build's layer checks: it does
 * nothing. Each check links one module's library whole with only the
 * libraries of the layers below it (docs/ARCHITECTURE.md, "Layers"), so a
 * lower module that calls up into a higher one fails to link. */
int main(void) { return 0; }
