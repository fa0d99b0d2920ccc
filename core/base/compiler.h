/*
 * core/base/compiler.h — language-level helpers every module may use.
 */
#ifndef KART_COMPILER_H
#define KART_COMPILER_H

/* The number of elements of an array (not a pointer). */
#define KART__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
