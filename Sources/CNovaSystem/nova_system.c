#include "nova_system.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

size_t nova_free_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    return info.fordblks;
#else
    return 0;
#endif
}

void nova_fix_mmap_threshold(size_t bytes) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, (int)bytes);
#endif
}

int nova_release_free_memory(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

size_t nova_allocation_size(void *pointer) {
#if defined(__GLIBC__)
    return malloc_usable_size(pointer);
#else
    (void)pointer;
    return 0;
#endif
}

char *nova_malloc_info(size_t *length) {
#if defined(__GLIBC__)
    char *text = NULL;
    FILE *stream = open_memstream(&text, length);
    if (stream == NULL) return NULL;
    malloc_info(0, stream);
    fclose(stream);
    return text;
#else
    *length = 0;
    return NULL;
#endif
}

void nova_process_cpu(long long *system_us, long long *user_us) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    *system_us = (long long)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
    *user_us = (long long)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec;
}

int nova_set_process_title(int argc, char **argv, const char *title) {
    if (argc < 1 || argv == NULL || argv[0] == NULL) return -1;
    /* The kernel shows the bytes from argv[0] to the end of the last argument (/proc/PID/cmdline, ps);
       they are contiguous as exec laid them out. Only that area is reused, so the title is cut to fit. */
    char *start = argv[0];
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i] != end) break;
        end = argv[i] + strlen(argv[i]) + 1;
    }
    size_t room = (size_t)(end - start);
    memset(start, 0, room);
    size_t length = strlen(title);
    if (length > room - 1) length = room - 1;
    memcpy(start, title, length);
    for (int i = 1; i < argc; i++) {
        if (argv[i] >= start && argv[i] < end) argv[i] = start + length;
    }
    return 0;
}
