/*
 * kart/common.h — what every kart header shares: the export macro, error
 * codes beyond errno, kart_strerror() and the version.
 *
 * Conventions (see DESIGN.md): a function returns int, 0 or a count on
 * success and a negative errno on failure; nothing is ever left in errno.
 * Durations are int64_t nanoseconds on CLOCK_MONOTONIC; a negative timeout
 * waits forever and zero does not block.
 */
#ifndef KART_COMMON_H
#define KART_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KART_BUILDING) && defined(__GNUC__)
#define KART_API __attribute__((visibility("default")))
#else
#define KART_API
#endif

#define KART_VERSION_MAJOR 0
#define KART_VERSION_MINOR 1
#define KART_VERSION_PATCH 0

/*
 * Errors that no errno names live in a reserved range below -20000, so that
 * they can never collide with a negative errno.
 */
enum {
    KART_EBASE = -20000,
    /* No backend could be started (every candidate failed or was forced off). */
    KART_ENOBACKEND = -20001,
    /* The named backend is not compiled in or not known. */
    KART_EUNKNOWNBACKEND = -20002,
    /* A barrier is broken (a timeout, abort or reset while waiting). */
    KART_EBROKEN = -20003,
    /* A process object was not started (kart/process.h). */
    KART_ENOTSTARTED = -20201,
    /* Queues: task_done() called more times than messages were put. */
    KART_ETASKDONE = -20501,
    /* Connections (kart/conn.h), -203xx. */
    /* The authkey handshake failed: a wrong digest, either side. */
    KART_EAUTH = -20300,
    /* The peer closed the connection between messages. */
    KART_EEOF = -20301,
    /* The peer closed the connection in the middle of a message. */
    KART_ETRUNCATED = -20302,
    /* A malformed frame header: a negative length other than -1. */
    KART_EBADFRAME = -20303,
    /* A message longer than the receiver's maximum. */
    KART_ETOOLONG = -20304,
    /* The handshake broke its protocol (not a challenge, bad digest prefix). */
    KART_EHANDSHAKE = -20305,
    /* The connection was aborted by an earlier protocol or I/O error. */
    KART_ECONNABORTED = -20306,
    /* Pools (-207xx): the worker process running the task died (signal,
     * crash, exit); kart_pool_failure says which and how. A closed pool
     * answers -ESHUTDOWN, a join of a running one -EBUSY. */
    KART_EWORKERDIED = -20700,
    /* History expansion (kart/history.h), -209xx; the call's message names
     * the text. An event (!foo, !?foo?, !12) matches no entry. */
    KART_EHISTEVENT = -20900,
    /* A word designator (:3, :$ ...) names words the event does not have. */
    KART_EHISTWORD = -20901,
    /* An unknown modifier after ':'. */
    KART_EHISTMODIFIER = -20902,
    /* :s, :& or ^old^new found no old text, or there was no previous one. */
    KART_EHISTSUBST = -20903,
};

/* Names any value a kart function returns: 0, a negative errno or a KART_E*
 * code. Never returns NULL; unknown codes get "unknown error". */
KART_API const char *kart_strerror(int err);

/* The symbolic name of an error, such as "EINVAL" or "KART_ENOBACKEND";
 * "UNKNOWN" for codes it does not know. */
KART_API const char *kart_err_name(int err);

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
KART_API const char *kart_version_string(void);

/* The current time in nanoseconds on CLOCK_MONOTONIC. */
KART_API int64_t kart_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
