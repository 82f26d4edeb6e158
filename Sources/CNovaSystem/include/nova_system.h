#ifndef NOVA_SYSTEM_H
#define NOVA_SYSTEM_H

#include <stddef.h>

/// Bytes the C allocator has handed out and not yet taken back (glibc mallinfo2: arena + mmapped).
size_t nova_allocated_bytes(void);

/// CPU time of the calling process, in microseconds.
void nova_process_cpu(long long *system_us, long long *user_us);

#endif
