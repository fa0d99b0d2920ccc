/*
 * examples/manager-server.c — a manager server as a tool: serves
 * SyncManager's types (dict, list, Queue, JoinableQueue, Namespace, Value,
 * Array, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,
 * Barrier) on an address until a client with the key shuts it down (or
 * SIGINT/SIGTERM), and prints "listening on A" when ready.
 *
 * Usage: manager-server --address A (--authkey-file F | --authkey K)
 *   A as kart's Listener takes it: 127.0.0.1:50000, [::1]:0, /tmp/sock,
 *   @abstract. The key file's bytes are the key (one trailing newline is
 *   dropped).
 *
 * Python connects with SyncManager(address=("127.0.0.1", 50000),
 * authkey=b"...").connect(). Stop it from C with kart_manager_shutdown,
 * from Python with multiprocessing.managers.dispatch(
 * Client(address, authkey=key), None, "shutdown"), or with SIGTERM.
 */
#include <kart.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kart_manager_server *server;

static void on_signal(int sig)
{
    (void)sig;
    kart_manager_server_shutdown(server); /* sets a flag: async-signal-safe */
}

static int usage(void)
{
    fprintf(stderr, "usage: manager-server --address A (--authkey-file F | --authkey K)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *address = NULL, *keyfile = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--address") == 0)
            address = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--authkey-file") == 0)
            keyfile = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--authkey") == 0)
            key = argv[++i];
        else
            return usage();
    }
    if (!address || (!keyfile && !key) || (keyfile && key))
        return usage();
    char buf[1024];
    size_t keylen = 0;
    if (keyfile) {
        FILE *f = fopen(keyfile, "rb");
        if (!f) {
            fprintf(stderr, "manager-server: %s: %s\n", keyfile, strerror(errno));
            return 1;
        }
        keylen = fread(buf, 1, sizeof buf, f);
        int more = fgetc(f) != EOF;
        fclose(f);
        if (more) {
            fprintf(stderr, "manager-server: %s: a key is at most %zu bytes\n", keyfile,
                    sizeof buf);
            return 1;
        }
        if (keylen > 0 && buf[keylen - 1] == '\n')
            keylen--;
        key = buf;
    } else {
        keylen = strlen(key);
    }
    if (keylen == 0) {
        fprintf(stderr, "manager-server: the key is empty\n");
        return 1;
    }
    kart_log_to_stderr(KART_LOG_WARNING);
    kart_manager_options o = {.authkey = key, .authkey_len = keylen};
    int r = kart_manager_server_create(&server, address, &o);
    if (r < 0) {
        fprintf(stderr, "manager-server: %s: %s\n", address, kart_strerror(r));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char bound[256];
    kart_manager_server_address(server, bound, sizeof bound);
    printf("listening on %s\n", bound);
    fflush(stdout);
    r = kart_manager_server_serve(server);
    kart_manager_server_free(server);
    return r < 0 ? 1 : 0;
}
