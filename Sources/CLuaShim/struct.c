/* The `struct` library Redis gives scripts: binary packing of numbers and strings.
 *
 *   struct.pack(format, v1, ...)    -> a string
 *   struct.unpack(format, s [, i])  -> the values, then the position after them
 *   struct.size(format)             -> the packed size (fixed-size formats only)
 *
 * Format: '>' big endian, '<' little endian, '![n]' alignment n (default the largest native), ' '
 * ignored, 'x' a zero byte, 'b'/'B' signed/unsigned char, 'h'/'H' short, 'l'/'L' long, 'T' size_t,
 * 'i[n]'/'I[n]' an integer of n bytes (default int), 'f' float, 'd' double, 'c[n]' n characters (packing
 * with n = 0: the whole string; unpacking with n = 0: as many as the number read just before), 's' a
 * zero-terminated string.
 *
 * Written for NovaCache after the format's documentation (Roberto Ierusalimschy's struct library). */
#include "CLuaShim.h"
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_INT_SIZE 32
#define MAX_ALIGN 8

typedef struct {
    int little;
    int align;
} Header;

static int native_little(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int read_number(lua_State *L, const char **format, int fallback) {
    if (!is_digit(**format)) return fallback;
    int value = 0;
    while (is_digit(**format)) {
        if (value > (INT_MAX - 9) / 10) return luaL_error(L, "integral size overflow");
        value = value * 10 + (*(*format)++ - '0');
    }
    return value;
}

/* The size of option `option` (0 for options that take no room). */
static size_t option_size(lua_State *L, char option, const char **format) {
    switch (option) {
    case 'x': case 'b': case 'B': return 1;
    case 'h': case 'H': return sizeof(short);
    case 'l': case 'L': return sizeof(long);
    case 'T': return sizeof(size_t);
    case 'f': return sizeof(float);
    case 'd': return sizeof(double);
    case 'c': return (size_t)read_number(L, format, 1);
    case 'i': case 'I': {
        int size = read_number(L, format, sizeof(int));
        if (size > MAX_INT_SIZE) luaL_error(L, "integral size %d is larger than limit of %d", size, MAX_INT_SIZE);
        return (size_t)size;
    }
    default: return 0;
    }
}

static size_t padding(size_t offset, const Header *h, char option, size_t size) {
    if (size == 0 || option == 'c') return 0;
    if (size > (size_t)h->align) size = (size_t)h->align;
    return (size - (offset & (size - 1))) & (size - 1);
}

/* Applies the options that change the header; raises for unknown options. */
static void control(lua_State *L, char option, const char **format, Header *h) {
    switch (option) {
    case ' ': return;
    case '>': h->little = 0; return;
    case '<': h->little = 1; return;
    case '!': {
        int align = read_number(L, format, MAX_ALIGN);
        if (align <= 0 || (align & (align - 1)) != 0) luaL_error(L, "alignment %d is not a power of 2", align);
        h->align = align;
        return;
    }
    default: {
        const char *message = lua_pushfstring(L, "invalid format option '%c'", option);
        luaL_argerror(L, 1, message);
    }
    }
}

static void put_integer(luaL_Buffer *b, lua_Number n, int little, size_t size) {
    unsigned char bytes[MAX_INT_SIZE];
    uint64_t value = n < 0 ? (uint64_t)(int64_t)n : (uint64_t)n;
    for (size_t i = 0; i < size; i++) {
        /* Bytes beyond the 64 bits of the value are zero, as in Redis's (no sign extension). */
        unsigned char byte = i < 8 ? (unsigned char)(value >> (8 * i)) : 0;
        bytes[little ? i : size - 1 - i] = byte;
    }
    luaL_addlstring(b, (const char *)bytes, size);
}

static void put_reversed(luaL_Buffer *b, const void *value, size_t size, int reverse) {
    unsigned char bytes[sizeof(double)];
    memcpy(bytes, value, size);
    if (reverse) {
        for (size_t i = 0; i < size / 2; i++) {
            unsigned char t = bytes[i];
            bytes[i] = bytes[size - 1 - i];
            bytes[size - 1 - i] = t;
        }
    }
    luaL_addlstring(b, (const char *)bytes, size);
}

static int pack(lua_State *L) {
    const char *format = luaL_checkstring(L, 1);
    Header h = {native_little(), 1};
    int argument = 2;
    size_t total = 0;
    luaL_Buffer b;
    lua_pushnil(L); /* the buffer's pieces go above this */
    luaL_buffinit(L, &b);
    while (*format) {
        char option = *format++;
        size_t size = option_size(L, option, &format);
        size_t pad = padding(total, &h, option, size);
        total += pad;
        while (pad-- > 0) luaL_addchar(&b, '\0');
        switch (option) {
        case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
            put_integer(&b, luaL_checknumber(L, argument++), h.little, size);
            break;
        case 'x':
            luaL_addchar(&b, '\0');
            break;
        case 'f': {
            float value = (float)luaL_checknumber(L, argument++);
            put_reversed(&b, &value, sizeof value, h.little != native_little());
            break;
        }
        case 'd': {
            double value = (double)luaL_checknumber(L, argument++);
            put_reversed(&b, &value, sizeof value, h.little != native_little());
            break;
        }
        case 'c': case 's': {
            size_t length;
            const char *s = luaL_checklstring(L, argument, &length);
            if (size == 0) size = length;
            argument++;
            /* Redis's reports the argument after the string (its counter has moved on). */
            luaL_argcheck(L, length >= size, argument, "string too short");
            luaL_addlstring(&b, s, size);
            if (option == 's') {
                luaL_addchar(&b, '\0');
                size++;
            }
            break;
        }
        default:
            control(L, option, &format, &h);
        }
        total += size;
    }
    luaL_pushresult(&b);
    return 1;
}

static lua_Number get_integer(const unsigned char *data, int little, int is_signed, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char byte = data[little ? size - 1 - i : i];
        value = (value << 8) | byte;
    }
    if (is_signed && size < 8) {
        uint64_t mask = ~(uint64_t)0 << (size * 8 - 1);
        if (value & mask) value |= mask;
    }
    return is_signed ? (lua_Number)(int64_t)value : (lua_Number)value;
}

static void get_reversed(void *value, const unsigned char *data, size_t size, int reverse) {
    unsigned char bytes[sizeof(double)];
    for (size_t i = 0; i < size; i++) bytes[i] = data[reverse ? size - 1 - i : i];
    memcpy(value, bytes, size);
}

static int unpack(lua_State *L) {
    const char *format = luaL_checkstring(L, 1);
    size_t length;
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 2, &length);
    lua_Integer start = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, start > 0, 3, "offset must be 1 or greater");
    size_t position = (size_t)start - 1;
    Header h = {native_little(), 1};
    lua_settop(L, 2);
    while (*format) {
        char option = *format++;
        size_t size = option_size(L, option, &format);
        position += padding(position, &h, option, size);
        luaL_argcheck(L, position <= length && size <= length - position, 2, "data string too short");
        luaL_checkstack(L, 2, "too many results");
        switch (option) {
        case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
            lua_pushnumber(L, get_integer(data + position, h.little, islower((unsigned char)option), size));
            break;
        case 'x':
            break;
        case 'f': {
            float value;
            get_reversed(&value, data + position, sizeof value, h.little != native_little());
            lua_pushnumber(L, value);
            break;
        }
        case 'd': {
            double value;
            get_reversed(&value, data + position, sizeof value, h.little != native_little());
            lua_pushnumber(L, value);
            break;
        }
        case 'c':
            if (size == 0) {
                if (lua_gettop(L) <= 2 || !lua_isnumber(L, -1)) luaL_error(L, "format 'c0' needs a previous size");
                size = (size_t)lua_tonumber(L, -1);
                lua_pop(L, 1);
                luaL_argcheck(L, position <= length && size <= length - position, 2, "data string too short");
            }
            lua_pushlstring(L, (const char *)data + position, size);
            break;
        case 's': {
            const unsigned char *end = memchr(data + position, '\0', length - position);
            if (end == NULL) luaL_error(L, "unfinished string in data");
            size = (size_t)(end - (data + position)) + 1;
            lua_pushlstring(L, (const char *)data + position, size - 1);
            break;
        }
        default:
            control(L, option, &format, &h);
        }
        position += size;
    }
    lua_pushinteger(L, (lua_Integer)position + 1);
    return lua_gettop(L) - 2;
}

static int size(lua_State *L) {
    const char *format = luaL_checkstring(L, 1);
    Header h = {native_little(), 1};
    size_t total = 0;
    while (*format) {
        char option = *format++;
        size_t size = option_size(L, option, &format);
        total += padding(total, &h, option, size);
        if (option == 's') luaL_argerror(L, 1, "option 's' has no fixed size");
        else if (option == 'c' && size == 0) luaL_argerror(L, 1, "option 'c0' has no fixed size");
        if (!isalnum((unsigned char)option)) control(L, option, &format, &h);
        total += size;
    }
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
}

int nova_luaopen_struct(lua_State *L) {
    static const luaL_Reg functions[] = {{"pack", pack}, {"unpack", unpack}, {"size", size}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
