// What Swift cannot call in Lua's C API directly: its macros, and raising a Lua error (a longjmp, which
// must never cross a Swift frame). Swift functions registered through `nova_lua_pushfunction` return the
// number of results, or -1 after pushing an error value, and the C trampoline raises it once the Swift
// frame has returned.
#ifndef NOVA_LUA_SHIM_H
#define NOVA_LUA_SHIM_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_cjson(lua_State *L);
int luaopen_bit(lua_State *L);

/// The struct and cmsgpack libraries Redis gives scripts (written here: struct.c, cmsgpack.c).
int nova_luaopen_struct(lua_State *L);
int nova_luaopen_cmsgpack(lua_State *L);

/// A Swift function callable from Lua: returns its result count, or -1 with the error value on top.
typedef int (*nova_lua_function)(lua_State *L);

/// Pushes `function` as a Lua function (a C closure over the trampoline).
void nova_lua_pushfunction(lua_State *L, nova_lua_function function);

/// Called every `count` VM instructions; returns nonzero after pushing an error value to stop the script.
typedef int (*nova_lua_hook)(lua_State *L);

/// Installs (or, with a null hook, removes) the instruction-count hook.
void nova_lua_sethook(lua_State *L, nova_lua_hook hook, int count);

/// Makes the installed hook run on every line and instruction (a script being stopped must not go on
/// by catching the error with pcall).
void nova_lua_hook_every_line(lua_State *L);

/// Replaces math.random and math.randomseed with Redis's (rand48, so that a seeded sequence is the same
/// as Redis's).
void nova_lua_install_random(lua_State *L);

/// Seeds the script PRNG (redis.replicate_commands-era Redis seeds it from rand() before each script).
void nova_lua_srand48(lua_State *L, int seed);

/// Opens the libraries Redis 7.0 loads (base, table, string, math, debug, cjson, bit, struct, cmsgpack)
/// in protected mode;
/// returns 0 on success.
int nova_lua_openlibs(lua_State *L);

static inline void nova_lua_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
static inline void nova_lua_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
static inline int nova_lua_upvalueindex(int i) { return LUA_GLOBALSINDEX - i; }
static inline int nova_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int nova_lua_globalsindex(void) { return LUA_GLOBALSINDEX; }
static inline void nova_lua_getglobal(lua_State *L, const char *name) { lua_getfield(L, LUA_GLOBALSINDEX, name); }
static inline void nova_lua_setglobal(lua_State *L, const char *name) { lua_setfield(L, LUA_GLOBALSINDEX, name); }

#endif
