#ifndef NOVA_SYSTEM_H
#define NOVA_SYSTEM_H

#include <stddef.h>

/// Bytes the C allocator has handed out and not yet taken back (glibc mallinfo2: arena + mmapped).
size_t nova_allocated_bytes(void);

/// Bytes the C allocator holds free in its arenas (glibc mallinfo2 `fordblks`): memory the process keeps
/// without using it.
size_t nova_free_bytes(void);

/// Serves allocations of `bytes` and more with their own mappings, returned to the system when freed,
/// and turns off glibc's dynamic threshold (which rises to the largest block freed so far, up to 32 MB).
void nova_fix_mmap_threshold(size_t bytes);

/// Gives the allocator's free pages back to the system (glibc malloc_trim, every arena). Returns 1 when
/// memory was released.
int nova_release_free_memory(void);

/* The usable size of a heap block (malloc_usable_size); 0 where unknown. */
size_t nova_allocation_size(void *pointer);

/* The allocator's own statistics (glibc: malloc_info's XML), in a buffer the caller frees; NULL when
   the allocator has none. */
char *nova_malloc_info(size_t *length);

/// Asks the CPU to start loading the cache line at `address` (a hint: never faults, changes nothing).
static inline void nova_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// CPU time of the calling process, in microseconds.
void nova_process_cpu(long long *system_us, long long *user_us);

/// Replaces the command line the kernel shows for this process (ps, /proc/PID/cmdline) with `title`, cut
/// to the length of the original arguments, which are erased: secrets given as flags stop showing. The
/// strings of `argv` must have been copied before. Returns 0, or -1 when there is no argv.
int nova_set_process_title(int argc, char **argv, const char *title);

#endif
