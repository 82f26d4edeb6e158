/* The `cmsgpack` library Redis gives scripts: MessagePack encoding of Lua values and back.
 *
 *   cmsgpack.pack(v1, v2, ...)            -> the encodings of every argument, concatenated
 *   cmsgpack.unpack(s)                    -> every value encoded in s
 *   cmsgpack.unpack_one(s [, offset])     -> offset of the next value (-1 at the end), the value
 *   cmsgpack.unpack_limit(s, n [, offset])-> offset, then up to n values (all when n <= 0)
 *
 * Encoding, as Redis's: nil, booleans; numbers that are integers in the int64 range as the smallest
 * integer format, others as float 32 when exact, else float 64; strings as fixstr/str8/str16/str32;
 * tables whose keys are exactly 1..n as arrays, others as maps; nesting deeper than 16 encodes nil.
 * Decoding accepts what Redis's accepts: every MessagePack type but bin and the extension types.
 *
 * Written for NovaCache from the MessagePack specification. */
#include "CLuaShim.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 16

/* The encoding is built in a plain C buffer: a luaL_Buffer keeps its pieces on the Lua stack, which the
   table traversal needs too. Nothing below raises a Lua error while the buffer is held (so it cannot
   leak): lua_checkstack failures encode nil. */
typedef struct {
    unsigned char *bytes;
    size_t length, capacity;
    int failed;
} Buffer;

static void put(Buffer *b, const void *bytes, size_t length) {
    if (b->failed) return;
    if (b->length + length > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 64;
        while (capacity < b->length + length) capacity *= 2;
        unsigned char *grown = realloc(b->bytes, capacity);
        if (!grown) { b->failed = 1; return; }
        b->bytes = grown;
        b->capacity = capacity;
    }
    memcpy(b->bytes + b->length, bytes, length);
    b->length += length;
}

static void put_byte(Buffer *b, unsigned char c) { put(b, &c, 1); }

static void put_be(Buffer *b, unsigned char tag, uint64_t value, int size) {
    unsigned char out[9];
    out[0] = tag;
    for (int i = 0; i < size; i++) out[1 + i] = (unsigned char)(value >> (8 * (size - 1 - i)));
    put(b, out, (size_t)size + 1);
}

static void encode_integer(Buffer *b, int64_t n) {
    if (n >= 0) {
        if (n <= 127) put_byte(b, (unsigned char)n);
        else if (n <= 0xff) put_be(b, 0xcc, (uint64_t)n, 1);
        else if (n <= 0xffff) put_be(b, 0xcd, (uint64_t)n, 2);
        else if (n <= 0xffffffffLL) put_be(b, 0xce, (uint64_t)n, 4);
        else put_be(b, 0xcf, (uint64_t)n, 8);
    } else {
        if (n >= -32) put_byte(b, (unsigned char)(int8_t)n);
        else if (n >= -128) put_be(b, 0xd0, (uint64_t)(uint8_t)(int8_t)n, 1);
        else if (n >= -32768) put_be(b, 0xd1, (uint64_t)(uint16_t)(int16_t)n, 2);
        else if (n >= -2147483648LL) put_be(b, 0xd2, (uint64_t)(uint32_t)(int32_t)n, 4);
        else put_be(b, 0xd3, (uint64_t)n, 8);
    }
}

static void encode_number(Buffer *b, lua_Number n) {
    if (isfinite(n) && floor(n) == n && n >= -9223372036854775808.0 && n < 9223372036854775808.0) {
        encode_integer(b, (int64_t)n);
        return;
    }
    float f = (float)n;
    if ((lua_Number)f == n || isnan(n)) {
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_be(b, 0xca, bits, 4);
    } else {
        uint64_t bits;
        memcpy(&bits, &n, 8);
        put_be(b, 0xcb, bits, 8);
    }
}

static void encode_string(Buffer *b, const char *s, size_t length) {
    if (length < 32) put_byte(b, (unsigned char)(0xa0 | length));
    else if (length <= 0xff) put_be(b, 0xd9, length, 1);
    else if (length <= 0xffff) put_be(b, 0xda, length, 2);
    else put_be(b, 0xdb, length, 4);
    put(b, s, length);
}

/* The length n when the table at `index` has exactly the keys 1..n (n may be 0), else -1. */
static long array_length(lua_State *L, int index) {
    long count = 0, highest = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) { lua_pop(L, 1); return -1; }
        lua_Number key = lua_tonumber(L, -1);
        if (key <= 0 || floor(key) != key) { lua_pop(L, 1); return -1; }
        if (key > highest) highest = (long)key;
        count++;
    }
    return count == highest ? highest : -1;
}

static void encode_value(lua_State *L, Buffer *b, int index, int depth);

static void encode_table(lua_State *L, Buffer *b, int index, int depth) {
    if (depth >= MAX_NESTING || !lua_checkstack(L, 4)) { put_byte(b, 0xc0); return; }
    long length = array_length(L, index);
    if (length >= 0) {
        if (length < 16) put_byte(b, (unsigned char)(0x90 | length));
        else if (length <= 0xffff) put_be(b, 0xdc, (uint64_t)length, 2);
        else put_be(b, 0xdd, (uint64_t)length, 4);
        for (long i = 1; i <= length; i++) {
            lua_rawgeti(L, index, (int)i);
            encode_value(L, b, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        return;
    }
    long pairs = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) { lua_pop(L, 1); pairs++; }
    if (pairs < 16) put_byte(b, (unsigned char)(0x80 | pairs));
    else if (pairs <= 0xffff) put_be(b, 0xde, (uint64_t)pairs, 2);
    else put_be(b, 0xdf, (uint64_t)pairs, 4);
    lua_pushnil(L);
    while (lua_next(L, index)) {
        int value = lua_gettop(L), key = value - 1;
        encode_value(L, b, key, depth + 1);
        encode_value(L, b, value, depth + 1);
        lua_pop(L, 1);
    }
}

static void encode_value(lua_State *L, Buffer *b, int index, int depth) {
    switch (lua_type(L, index)) {
    case LUA_TBOOLEAN: put_byte(b, lua_toboolean(L, index) ? 0xc3 : 0xc2); return;
    case LUA_TNUMBER: encode_number(b, lua_tonumber(L, index)); return;
    case LUA_TSTRING: {
        size_t length;
        const char *s = lua_tolstring(L, index, &length);
        encode_string(b, s, length);
        return;
    }
    case LUA_TTABLE: encode_table(L, b, index, depth); return;
    default: put_byte(b, 0xc0); return;
    }
}

static int pack(lua_State *L) {
    int count = lua_gettop(L);
    if (count == 0) return luaL_argerror(L, 0, "MessagePack pack needs input.");
    Buffer b = {NULL, 0, 0, 0};
    for (int i = 1; i <= count; i++) encode_value(L, &b, i, 0);
    if (b.failed) {
        free(b.bytes);
        return luaL_error(L, "not enough memory");
    }
    lua_pushlstring(L, (const char *)b.bytes, b.length);
    free(b.bytes);
    return 1;
}

/* Decoding. */
typedef struct {
    const unsigned char *p;
    size_t left;
    int error; /* 0, 1 missing bytes, 2 bad format */
} Cursor;

static uint64_t take(Cursor *c, int size) {
    if (c->left < (size_t)size) { c->error = 1; return 0; }
    uint64_t value = 0;
    for (int i = 0; i < size; i++) value = (value << 8) | c->p[i];
    c->p += size;
    c->left -= (size_t)size;
    return value;
}

static void decode_value(lua_State *L, Cursor *c);

static void decode_string(lua_State *L, Cursor *c, size_t length) {
    if (c->left < length) { c->error = 1; return; }
    lua_pushlstring(L, (const char *)c->p, length);
    c->p += length;
    c->left -= length;
}

static void decode_array(lua_State *L, Cursor *c, uint64_t count) {
    luaL_checkstack(L, 4, "too deeply nested MessagePack input");
    lua_newtable(L);
    for (uint64_t i = 1; i <= count && !c->error; i++) {
        decode_value(L, c);
        if (c->error) return;
        lua_rawseti(L, -2, (int)i);
    }
}

static void decode_map(lua_State *L, Cursor *c, uint64_t count) {
    luaL_checkstack(L, 4, "too deeply nested MessagePack input");
    lua_newtable(L);
    for (uint64_t i = 0; i < count && !c->error; i++) {
        decode_value(L, c);
        if (c->error) return;
        decode_value(L, c);
        if (c->error) return;
        if (lua_isnil(L, -2)) { lua_pop(L, 2); continue; } /* a nil key cannot be stored */
        lua_rawset(L, -3);
    }
}

static void decode_value(lua_State *L, Cursor *c) {
    /* Every value takes a stack slot, and unpack returns them all: grow the stack as Redis does (Lua
       only guarantees 20 free slots; writing past them corrupts its heap). */
    luaL_checkstack(L, 1, "too many return values at once; use unpack_one or unpack_limit instead.");
    if (c->left == 0) { c->error = 1; return; }
    unsigned char tag = *c->p++;
    c->left--;
    if (tag <= 0x7f) { lua_pushnumber(L, tag); return; }
    if (tag >= 0xe0) { lua_pushnumber(L, (int8_t)tag); return; }
    if ((tag & 0xe0) == 0xa0) { decode_string(L, c, tag & 0x1f); return; }
    if ((tag & 0xf0) == 0x90) { decode_array(L, c, tag & 0x0f); return; }
    if ((tag & 0xf0) == 0x80) { decode_map(L, c, tag & 0x0f); return; }
    switch (tag) {
    case 0xc0: lua_pushnil(L); return;
    case 0xc2: lua_pushboolean(L, 0); return;
    case 0xc3: lua_pushboolean(L, 1); return;
    case 0xcc: lua_pushnumber(L, (lua_Number)take(c, 1)); return;
    case 0xcd: lua_pushnumber(L, (lua_Number)take(c, 2)); return;
    case 0xce: lua_pushnumber(L, (lua_Number)take(c, 4)); return;
    case 0xcf: lua_pushnumber(L, (lua_Number)take(c, 8)); return;
    case 0xd0: lua_pushnumber(L, (int8_t)take(c, 1)); return;
    case 0xd1: lua_pushnumber(L, (int16_t)take(c, 2)); return;
    case 0xd2: lua_pushnumber(L, (int32_t)take(c, 4)); return;
    case 0xd3: lua_pushnumber(L, (lua_Number)(int64_t)take(c, 8)); return;
    case 0xca: {
        uint32_t bits = (uint32_t)take(c, 4);
        float f;
        memcpy(&f, &bits, 4);
        lua_pushnumber(L, f);
        return;
    }
    case 0xcb: {
        uint64_t bits = take(c, 8);
        double d;
        memcpy(&d, &bits, 8);
        lua_pushnumber(L, d);
        return;
    }
    case 0xd9: { size_t n = (size_t)take(c, 1); if (!c->error) decode_string(L, c, n); return; }
    case 0xda: { size_t n = (size_t)take(c, 2); if (!c->error) decode_string(L, c, n); return; }
    case 0xdb: { size_t n = (size_t)take(c, 4); if (!c->error) decode_string(L, c, n); return; }
    case 0xdc: { uint64_t n = take(c, 2); if (!c->error) decode_array(L, c, n); return; }
    case 0xdd: { uint64_t n = take(c, 4); if (!c->error) decode_array(L, c, n); return; }
    case 0xde: { uint64_t n = take(c, 2); if (!c->error) decode_map(L, c, n); return; }
    case 0xdf: { uint64_t n = take(c, 4); if (!c->error) decode_map(L, c, n); return; }
    default: c->error = 2; return;
    }
}

/* Decodes up to `limit` values (all when limit <= 0) from byte `offset`; pushes the offset of what
   follows (-1 when all was read) then the values. */
static int unpack_from(lua_State *L, int limit, long offset) {
    size_t length;
    const char *s = luaL_checklstring(L, 1, &length);
    if (offset < 0 || (size_t)offset > length) return luaL_error(L, "Start offset %d greater than input length %d.", (int)offset, (int)length);
    Cursor c = {(const unsigned char *)s + offset, length - (size_t)offset, 0};
    int base = lua_gettop(L);
    lua_pushnil(L); /* the offset, set below */
    int count = 0;
    while (c.left > 0 && (limit <= 0 || count < limit)) {
        decode_value(L, &c);
        if (c.error == 1) return luaL_error(L, "Missing bytes in input.");
        if (c.error) return luaL_error(L, "Bad data format in input.");
        count++;
    }
    lua_pushnumber(L, c.left == 0 ? -1 : (lua_Number)(length - c.left));
    lua_replace(L, base + 1);
    return count + 1;
}

static int unpack_all(lua_State *L) {
    int results = unpack_from(L, 0, 0);
    lua_remove(L, -results); /* no offset for unpack */
    return results - 1;
}

static int unpack_one(lua_State *L) {
    long offset = (long)luaL_optnumber(L, 2, 0);
    lua_settop(L, 1);
    return unpack_from(L, 1, offset);
}

static int unpack_limit(lua_State *L) {
    int limit = (int)luaL_checknumber(L, 2);
    long offset = (long)luaL_optnumber(L, 3, 0);
    lua_settop(L, 1);
    int results = unpack_from(L, limit, offset);
    if (limit > 0) return results;
    lua_remove(L, -results); /* no limit: the values alone, as unpack */
    return results - 1;
}

int nova_luaopen_cmsgpack(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"pack", pack}, {"unpack", unpack_all}, {"unpack_one", unpack_one}, {"unpack_limit", unpack_limit}, {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    lua_pushliteral(L, "cmsgpack");
    lua_setfield(L, -2, "_NAME");
    lua_pushliteral(L, "lua-cmsgpack 0.4.0");
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "NovaCache's implementation of Redis's cmsgpack interface");
    lua_setfield(L, -2, "_COPYRIGHT");
    lua_pushliteral(L, "MessagePack C implementation for Lua");
    lua_setfield(L, -2, "_DESCRIPTION");
    return 1;
}
