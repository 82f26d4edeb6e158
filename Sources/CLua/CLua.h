// Lua 5.1 from Debian (liblua5.1-0-dev, found through pkg-config lua5.1), and the cjson and bit
// libraries Redis embeds (lua-cjson-dev, lua-bitop-dev).
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_cjson(lua_State *L);
int luaopen_bit(lua_State *L);
