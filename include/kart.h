/*
 * kart.h — the umbrella header of libkart: include this, or the module
 * headers under kart/ one by one.
 *
 * Link with `pkg-config --cflags --libs kart`.
 */
#ifndef KART_H
#define KART_H

#include <kart/common.h>
#include <kart/selector.h>
#include <kart/loop.h>
#include <kart/io.h>
#include <kart/numa.h>
#include <kart/queue.h>
#include <kart/pool.h>
#include <kart/sync.h>
#include <kart/thread.h>
#include <kart/shm.h>
#include <kart/shared.h>
#include <kart/mmap.h>
#include <kart/process.h>
#include <kart/conn.h>
#include <kart/log.h>
#include <kart/manager.h>
#include <kart/complete.h>
#include <kart/history.h>
#include <kart/line.h>
#include <kart/obj.h>

#endif
