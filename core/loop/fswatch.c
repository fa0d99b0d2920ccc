/*
 * core/loop/fswatch.c — what the two file-watcher backends share: the
 * loop's one notification descriptor (inotify on Linux, a kqueue on the
 * BSDs and macOS), registered in the loop's selector as readable the first
 * time a watcher starts, and closed with the loop. The backends
 * (fswatch_inotify.c, fswatch_kqueue.c) open the descriptor and translate
 * its events; the registration and the teardown are the same for both.
 */
#include "loop_private.h"

#include <unistd.h>

int kart__fswatch_attach(kart_loop *loop, int fd)
{
    int err = kart_selector_register(loop->sel, fd, KART_READABLE, &loop->fs_tag);
    if (err < 0) {
        close(fd);
        return err;
    }
    loop->fsfd = fd;
    return 0;
}

void kart__fswatch_fini(kart_loop *loop)
{
    if (loop->fsfd < 0)
        return;
    kart_selector_unregister(loop->sel, loop->fsfd);
    close(loop->fsfd);
    loop->fsfd = -1;
}
