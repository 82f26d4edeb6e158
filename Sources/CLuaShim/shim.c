#include "CLuaShim.h"
#include <math.h>
#include <stdint.h>

static int trampoline(lua_State *L) {
    nova_lua_function function = (nova_lua_function)lua_touserdata(L, lua_upvalueindex(1));
    int results = function(L);
    if (results < 0) return lua_error(L);
    return results;
}

void nova_lua_pushfunction(lua_State *L, nova_lua_function function) {
    lua_pushlightuserdata(L, (void *)function);
    lua_pushcclosure(L, trampoline, 1);
}

/* The hook and the PRNG state belong to one lua_State (kept in its registry): several interpreters may
   run at once in different threads (the unit tests do). */
static const char *HOOK_KEY = "nova.hook";
static const char *RAND48_KEY = "nova.rand48";

static void hook_trampoline(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, HOOK_KEY);
    nova_lua_hook hook = (nova_lua_hook)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (hook && hook(L)) lua_error(L);
}

void nova_lua_sethook(lua_State *L, nova_lua_hook hook, int count) {
    lua_pushlightuserdata(L, (void *)hook);
    lua_setfield(L, LUA_REGISTRYINDEX, HOOK_KEY);
    if (hook) lua_sethook(L, hook_trampoline, LUA_MASKCOUNT, count);
    else lua_sethook(L, NULL, 0, 0);
}

void nova_lua_hook_every_line(lua_State *L) {
    lua_sethook(L, hook_trampoline, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* rand48: X(n+1) = (a * X(n) + c) mod 2^48 with POSIX's a and c, the high 31 bits returned, as Redis's
   own rand48 (its scripts' math.random must not depend on the C library's). */
static uint64_t *rand48_state(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, RAND48_KEY);
    uint64_t *state = (uint64_t *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return state;
}

void nova_lua_srand48(lua_State *L, int seed) {
    uint64_t *state = rand48_state(L);
    if (state) *state = ((uint64_t)(uint32_t)seed << 16) | 0x330E;
}

static int32_t lrand48_next(lua_State *L) {
    uint64_t *state = rand48_state(L);
    *state = (*state * 0x5DEECE66DULL + 0xB) & 0xFFFFFFFFFFFFULL;
    return (int32_t)(*state >> 17);
}

static int math_random(lua_State *L) {
    lua_Number r = (lua_Number)(lrand48_next(L) % INT32_MAX) / (lua_Number)INT32_MAX;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        break;
    case 1: {
        int upper = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= upper, 1, "interval is empty");
        lua_pushnumber(L, floor(r * upper) + 1);
        break;
    }
    case 2: {
        int lower = luaL_checkint(L, 1);
        int upper = luaL_checkint(L, 2);
        luaL_argcheck(L, lower <= upper, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (upper - lower + 1)) + lower);
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int math_randomseed(lua_State *L) {
    nova_lua_srand48(L, luaL_checkint(L, 1));
    return 0;
}

void nova_lua_install_random(lua_State *L) {
    uint64_t *state = (uint64_t *)lua_newuserdata(L, sizeof(uint64_t));
    *state = 0x1234ABCD330EULL;
    lua_setfield(L, LUA_REGISTRYINDEX, RAND48_KEY);
    lua_getfield(L, LUA_GLOBALSINDEX, "math");
    lua_pushcfunction(L, math_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, math_randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
}

static int open_all(lua_State *L) {
    static const luaL_Reg libraries[] = {
        {"", luaopen_base},
        {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},
        {LUA_DBLIBNAME, luaopen_debug},
        {"cjson", luaopen_cjson},
        {"bit", luaopen_bit},
        {"struct", nova_luaopen_struct},
        {"cmsgpack", nova_luaopen_cmsgpack},
        {NULL, NULL},
    };
    for (const luaL_Reg *library = libraries; library->func; library++) {
        lua_pushcfunction(L, library->func);
        lua_pushstring(L, library->name);
        lua_call(L, 1, 1);
        /* cjson returns its table without making it a global. */
        if (library->name[0]) lua_setfield(L, LUA_GLOBALSINDEX, library->name);
        else lua_pop(L, 1);
    }
    return 0;
}

int nova_lua_openlibs(lua_State *L) {
    return lua_cpcall(L, open_all, NULL);
}
