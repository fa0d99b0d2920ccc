/*
 * core/numa_private.h — what tests (and the pools' tests) may reach of
 * numa/ beyond kart/numa.h. Not installed.
 */
#ifndef KART_NUMA_PRIVATE_H
#define KART_NUMA_PRIVATE_H

/*
 * Forgets the topology read so far (and with it the probe behind
 * kart_numa_policy_available), so that the next kart_numa_* call reads it
 * again, KART_NUMA_SYSFS included: a test sets or unsets that variable,
 * then calls this. Not safe while another thread uses kart_numa_*; the
 * old topology is kept (never freed), so pointers into it stay valid.
 */
void kart__numa_reload(void);

#endif
