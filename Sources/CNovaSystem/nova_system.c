#include "nova_system.h"

#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

size_t nova_allocated_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
#else
    return 0;
#endif
}

void nova_process_cpu(long long *system_us, long long *user_us) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    *system_us = (long long)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
    *user_us = (long long)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec;
}
