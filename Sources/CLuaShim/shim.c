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

static nova_lua_hook current_hook;

static void hook_trampoline(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (current_hook && current_hook(L)) lua_error(L);
}

void nova_lua_sethook(lua_State *L, nova_lua_hook hook, int count) {
    current_hook = hook;
    if (hook) lua_sethook(L, hook_trampoline, LUA_MASKCOUNT, count);
    else lua_sethook(L, NULL, 0, 0);
}

/* rand48: X(n+1) = (a * X(n) + c) mod 2^48 with POSIX's a and c, the high 31 bits returned, as Redis's
   own rand48 (its scripts' math.random must not depend on the C library's). */
static uint64_t rand48_state = 0x1234ABCD330EULL;

void nova_lua_srand48(int seed) {
    rand48_state = ((uint64_t)(uint32_t)seed << 16) | 0x330E;
}

static int32_t lrand48_next(void) {
    rand48_state = (rand48_state * 0x5DEECE66DULL + 0xB) & 0xFFFFFFFFFFFFULL;
    return (int32_t)(rand48_state >> 17);
}

static int math_random(lua_State *L) {
    lua_Number r = (lua_Number)(lrand48_next() % INT32_MAX) / (lua_Number)INT32_MAX;
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
    nova_lua_srand48(luaL_checkint(L, 1));
    return 0;
}

void nova_lua_install_random(lua_State *L) {
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
