// A small program that proves, inside the container, that its runfiles travelled with it
// and that the image config (env, args) reached it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    char path[4096];
    // Bazel lays out data files at <program>.runfiles/<repo>/<path>; image_layer keeps that.
    snprintf(path, sizeof path, "%s.runfiles/_main/app/message.txt", argv[0]);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    char message[256] = {0};
    if (!fgets(message, sizeof message, f)) {
        fprintf(stderr, "%s: empty\n", path);
        return 1;
    }
    fclose(f);
    message[strcspn(message, "\n")] = 0;
    const char *greeting = getenv("GREETING");
    printf("%s, %s!\n", greeting ? greeting : "Hello", argc > 1 ? argv[1] : "world");
    printf("message: %s\n", message);
    return 0;
}
