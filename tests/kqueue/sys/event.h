/* Test-only <sys/event.h>: the kevent API as documented in kqueue(2),
 * with variants selected by KQSTUB_*: default FreeBSD-like (short filter,
 * ext[4]), KQSTUB_MACOS (EVFILT_EXCEPT/NOTE_OOB), KQSTUB_NETBSD (uint32_t
 * fields, unsigned filter numbers, size_t counts), KQSTUB_OLD (intptr_t
 * udata, no EV_RECEIPT, no EV_DISPATCH). Written for compile checks and a
 * Linux emulation (kqemu.c); not a copy of any system's header. */
#ifndef KQSTUB_SYS_EVENT_H
#define KQSTUB_SYS_EVENT_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(KQSTUB_NETBSD)
#define EVFILT_READ 0U
#define EVFILT_WRITE 1U
#define EVFILT_SIGNAL 5U
#define EVFILT_VNODE 3U
typedef uint32_t kqstub_filter_t;
typedef uint32_t kqstub_flags_t;
typedef size_t kqstub_count_t;
#else
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_SIGNAL (-6)
#define EVFILT_VNODE (-4)
typedef short kqstub_filter_t;
typedef unsigned short kqstub_flags_t;
typedef int kqstub_count_t;
#endif
/* EVFILT_VNODE's notes: the same values on every BSD and macOS. */
#define NOTE_DELETE 0x0001
#define NOTE_WRITE 0x0002
#define NOTE_EXTEND 0x0004
#define NOTE_ATTRIB 0x0008
#define NOTE_LINK 0x0010
#define NOTE_RENAME 0x0020
#if defined(KQSTUB_MACOS)
#define EVFILT_EXCEPT (-15)
#define NOTE_OOB 0x00000002
#elif defined(KQSTUB_OLD)
#define EVFILT_EXCEPT (-9)
#define NOTE_OOB 0x0004
#endif

struct kevent {
    uintptr_t ident;
    kqstub_filter_t filter;
    kqstub_flags_t flags;
    unsigned int fflags;
    int64_t data;
#if defined(KQSTUB_OLD)
    intptr_t udata;
#else
    void *udata;
#endif
#if !defined(KQSTUB_MACOS) && !defined(KQSTUB_NETBSD) && !defined(KQSTUB_OLD)
    uint64_t ext[4];
#endif
};

#define EV_SET(kevp, a, b, c, d, e, f)                                                             \
    (*(kevp) = (struct kevent){                                                                    \
         .ident = (a), .filter = (b), .flags = (c), .fflags = (d), .data = (e), .udata = (f)})

#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#if !defined(KQSTUB_OLD)
#define EV_RECEIPT 0x0040
#define EV_DISPATCH 0x0080
#endif
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, kqstub_count_t nchanges,
           struct kevent *eventlist, kqstub_count_t nevents, const struct timespec *timeout);
#endif
