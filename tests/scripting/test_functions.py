"""Issue 17: FUNCTION and FCALL compared byte for byte with redis-server 7.0 (library metadata, the load-time
sandbox, register_function's forms and errors, flags, FCALL_RO, errors at run time, LIST/STATS/DELETE/
FLUSH/DUMP/RESTORE), then persistence both ways: snapshots, DUMP payloads and the append-only file."""
import os
import tempfile

import pytest

from support import servers

from scripting.raw import RawConnection
from scripting.test_busy_scripts import same_on_both, send, wait_busy


def compare(pair, commands, protocols=(2, 3)):
    """Runs `commands` on both servers (functions and data flushed first) in each protocol; every reply
    must be the same bytes."""
    for protocol in protocols:
        replies = []
        for server in pair:
            c = RawConnection(server.port, protocol)
            c.call("FLUSHALL")
            c.call("FUNCTION", "FLUSH")
            replies.append([c.call(*command) for command in commands])
            c.close()
        differences = [f"RESP{protocol} {command!r}\n  ours:   {ours!r}\n  redis:  {theirs!r}"
                       for command, ours, theirs in zip(commands, *replies) if ours != theirs]
        assert not differences, "\n".join(differences)


def load(code, *options):
    return ["FUNCTION", "LOAD", *options, code]


ECHO = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"
NAMED = ("#!lua name=y\nredis.register_function{function_name='g', callback=function(k, a) return redis.call('ping') end, "
         "flags={'no-writes'}, description='desc'}")

LOADING = [
    load(ECHO), load(ECHO), load("redis.register_function('f', function() return 1 end)"), load("#!lua\nreturn 1"),
    load("#!lua name=x\nreturn 1"), load("#!lua name=x\nredis.call('set','a','b')"),
    load("#!lua name=x\nredis.register_function('my-f', function() return 1 end)"),
    load("#!lua name=x-y\nredis.register_function('f', function() return 1 end)"),
    load("#!lua name=x foo=bar\nredis.register_function('f', function() return 1 end)"),
    load("#!js name=x\nredis.register_function('f', function() return 1 end)"), load("#!lua name=x"),
    load("#!lua name=x\nredis.register_function('myfunc', function() return 1 end)"), load(NAMED),
    load("#!lua name=z\nlocal x = = 1"), load("#!lua name=z\nerror('boom')"), load("#!lua name=z\nredis.register_function('f', 1)"),
    load("#!lua name=z\nredis.register_function(1, function() end)"), load("#!lua name=z\nredis.register_function('f')"),
    load("#!lua name=z\nredis.register_function('a', 'b', 'c')"), load("#!lua name=z\nredis.register_function('f2')"),
    load("#!lua name=z\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}"),
    load("#!lua name=z\nredis.register_function{function_name='f', callback=function() end, other=1}"),
    load("#!lua name=z\nredis.register_function{callback=function() end}"),
    load("#!lua name=z\nredis.register_function{function_name='f'}"),
    load("#!lua name=z\nredis.register_function{function_name='f', callback=function() end, flags='no-writes'}"),
    load("#!lua name=z\nredis.register_function{function_name='f', callback=function() end, description=3}"),
    load("#!lua name=z\nredis.register_function{function_name='f', callback=function() end}; "
         "redis.register_function{function_name='f', callback=function() end}"),
    load("#!lua name=z\nredis.log(redis.LOG_WARNING, 'loading'); return redis.setresp"), load("#!lua name=z\nx = 1"),
    load("#!lua name=z\nlocal a = redis.sha1hex; redis.register_function('zz', function() return 1 end)"),
    load("#!lua name=z\nlocal s = string.format('%d', 1)"), load("#!lua name=timeout\nwhile true do end"),
    load("#!lua name=q\nredis.register_function('q', function() return 1 end)", "BOGUS"), ["FUNCTION", "LOAD"],
    ["FUNCTION", "LOAD", "REPLACE"],
    load("#!lua name=mylib\nredis.register_function('other', function() return 2 end)", "REPLACE"),
    ["FCALL", "myfunc", "0", "x"], ["FCALL", "other", "0"], ["FUNCTION", "LIST", "LIBRARYNAME", "my*", "WITHCODE"],
]


def test_loading_libraries(pair):
    compare(pair, LOADING)


CALLS = [
    load(ECHO), load(NAMED),
    load("#!lua name=lib1\nredis.register_function('f1', function(keys, args) return redis.call('incr', keys[1]) end)"),
    load("#!lua name=lib2\nredis.register_function{function_name='f2', callback=function(keys, args) return #args end, "
         "flags={'no-writes', 'allow-oom'}, description='counts'}"),
    load("#!lua name=bad\nredis.register_function('boom', function(keys) return redis.call('nosuch') end) "
         "redis.register_function('boom2', function() local x = nil; return x.y end) "
         "redis.register_function('w', function() return redis.call('set', 'k', 'v') end) "
         "redis.register_function{function_name='ro', callback=function() return redis.call('set', 'k', 'v') end, flags={'no-writes'}} "
         "redis.register_function('pc', function() return redis.pcall('nosuch') end) "
         "redis.register_function('late', function() return redis.register_function('x', function() end) end) "
         "redis.register_function('resp3', function() redis.setresp(3); return redis.call('hgetall', 'h') end)"),
    load("#!lua name=keysargs\nredis.register_function('ka', function(keys, args) return {keys[1], args[1], #keys, #args} end) "
         "redis.register_function('glob', function() return KEYS end) "
         "redis.register_function('modify', function() y = 1 end)"),
    ["FCALL", "myfunc", "0", "hello"], ["FCALL", "g", "0"], ["FCALL_RO", "g", "0"], ["FCALL_RO", "myfunc", "0", "a"],
    ["FCALL", "nosuch", "0"], ["FCALL", "myfunc", "x"], ["FCALL", "myfunc", "2", "a"], ["FCALL", "myfunc", "-1"],
    ["FCALL", "f1", "1", "counter"], ["FCALL", "f1", "1", "counter"], ["FCALL_RO", "f2", "0", "a", "b", "c"],
    ["FCALL", "boom", "0"], ["FCALL", "boom2", "0"], ["FCALL_RO", "w", "0"], ["FCALL", "ro", "0"], ["FCALL", "w", "0"],
    ["FCALL", "pc", "0"], ["FCALL", "late", "0"], ["HSET", "h", "a", "1"], ["FCALL", "resp3", "0"],
    ["FCALL", "ka", "2", "k1", "k2", "a1"], ["FCALL", "glob", "0"], ["FCALL", "modify", "0"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "lib2"], ["FUNCTION", "LIST", "LIBRARYNAME", "y", "WITHCODE"],
    ["FUNCTION", "LIST", "WITHCODE", "WITHCODE"], ["FUNCTION", "LIST", "LIBRARYNAME"], ["FUNCTION", "LIST", "BOGUS"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b"], ["FUNCTION", "STATS"], ["FUNCTION", "KILL"],
    ["FUNCTION", "DELETE", "nosuch"], ["FUNCTION", "DELETE", "mylib"], ["FCALL", "myfunc", "0"], ["FUNCTION", "DELETE"],
    ["FUNCTION", "FLUSH", "BOGUS"], ["FUNCTION", "FLUSH", "ASYNC"], ["FUNCTION", "LIST"], ["FUNCTION", "STATS"],
    ["FUNCTION", "RESTORE", "garbage"], ["FUNCTION", "HELP"], ["FUNCTION", "NOSUCH"],
]


def test_calling_functions(pair):
    compare(pair, CALLS)


def test_dump_payloads_restore_on_the_other_server(pair):
    libraries = [ECHO, NAMED, "#!lua name=long\n" + "local padding = '" + "x" * 300 + "'\n"
                 "redis.register_function('long', function() return #padding end)"]
    for source, target in (pair, tuple(reversed(pair))):
        a, b = RawConnection(source.port), RawConnection(target.port)
        for c in (a, b):
            c.call("FUNCTION", "FLUSH")
        for code in libraries:
            assert a.call("FUNCTION", "LOAD", code).startswith(b"$")
        payload = a.call("FUNCTION", "DUMP")
        payload = payload[payload.index(b"\r\n") + 2:-2]
        assert b.call("FUNCTION", "RESTORE", payload) == b"+OK\r\n"
        assert b.call("FCALL", "long", "0") == b":300\r\n"
        # APPEND (the default) refuses a library that exists; REPLACE and FLUSH do not.
        # (which colliding library the error names follows Redis's hash order)
        for refusal in (b.call("FUNCTION", "RESTORE", payload), a.call("FUNCTION", "RESTORE", payload)):
            assert refusal.startswith(b"-ERR Library ") and refusal.endswith(b" already exists\r\n"), refusal
        assert b.call("FUNCTION", "RESTORE", payload, "REPLACE") == b"+OK\r\n"
        assert b.call("FUNCTION", "RESTORE", payload, "FLUSH") == b"+OK\r\n"
        assert b.call("FUNCTION", "RESTORE", payload, "BOGUS") == a.call("FUNCTION", "RESTORE", payload, "BOGUS")
        assert b.call("FUNCTION", "RESTORE", payload[:-1] + bytes([payload[-1] ^ 1])) == \
            b"-ERR DUMP payload version or checksum are wrong\r\n"
        assert b.call("FUNCTION", "LIST", "LIBRARYNAME", "long", "WITHCODE") == a.call("FUNCTION", "LIST", "LIBRARYNAME", "long", "WITHCODE")


@pytest.mark.parametrize("writer", ["nova", "redis"])
def test_snapshots_keep_functions_for_either_server(writer):
    workdir = tempfile.mkdtemp()
    start = {"nova": lambda **kw: servers.start_nova("--save", "", **kw), "redis": servers.start_redis}
    first = start[writer](workdir=workdir)
    try:
        c = RawConnection(first.port)
        c.call("FUNCTION", "LOAD", ECHO)
        c.call("FUNCTION", "LOAD", NAMED)
        c.call("SET", "k", "v")
        assert c.call("SAVE") == b"+OK\r\n"
    finally:
        first.stop()
    for reader in ("nova", "redis"):
        server = start[reader](workdir=workdir)
        try:
            c = RawConnection(server.port)
            assert c.call("FCALL", "myfunc", "0", "back") == b"$4\r\nback\r\n", reader
            assert c.call("FCALL", "g", "0") == b"+PONG\r\n", reader
            assert c.call("FUNCTION", "LIST", "LIBRARYNAME", "y") == (
                b"*1\r\n*6\r\n$12\r\nlibrary_name\r\n$1\r\ny\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*1\r\n"
                b"*6\r\n$4\r\nname\r\n$1\r\ng\r\n$11\r\ndescription\r\n$4\r\ndesc\r\n$5\r\nflags\r\n*1\r\n+no-writes\r\n"), reader
            assert c.call("GET", "k") == b"$1\r\nv\r\n"
        finally:
            server.stop()


def test_functions_survive_an_aof_rewrite_and_kill_9():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "", workdir=workdir)
    try:
        c = RawConnection(server.port)
        c.call("FUNCTION", "LOAD", ECHO)
        assert c.call("BGREWRITEAOF").startswith(b"+")
        for _ in range(200):
            if b"aof_rewrite_in_progress:0" in c.call("INFO", "persistence"):
                break
        c.call("FUNCTION", "LOAD", NAMED)  # after the rewrite: in the incremental file
        c.call("FUNCTION", "LOAD", "#!lua name=gone\nredis.register_function('gone', function() return 1 end)")
        c.call("FUNCTION", "DELETE", "gone")
        assert c.call("FCALL", "g", "0") == b"+PONG\r\n"
        server.kill()
        for start in (lambda *args, **kw: servers.start_nova("--save", "", *args, **kw), servers.start_redis):
            again = start("--appendonly", "yes", workdir=workdir)
            try:
                c = RawConnection(again.port)
                assert c.call("FCALL", "myfunc", "0", "x") == b"$1\r\nx\r\n"
                assert c.call("FCALL", "g", "0") == b"+PONG\r\n"
                assert c.call("FCALL", "gone", "0") == b"-ERR Function not found\r\n"
            finally:
                again.stop()
    finally:
        server.cleanup()


def test_a_busy_function_answers_busy_and_is_killed_by_function_kill():
    endless = "#!lua name=spin\nredis.register_function('spin', function() local i = 0 while true do i = i + 1 end end)"

    def scenario(server):
        setup = RawConnection(server.port)
        replies = [setup.call("FUNCTION", "LOAD", endless)]
        caller = send(server.port, ["FCALL", "spin", "0"])
        other = wait_busy(server.port)
        stats = other.call("FUNCTION", "STATS")
        replies += [other.call("PING"), other.call("SCRIPT", "KILL"), b"running_script" in stats and b"spin" in stats,
                    other.call("FUNCTION", "KILL"), caller.reply(), other.call("FUNCTION", "KILL"), other.call("PING")]
        return replies
    transcript = same_on_both(scenario)
    assert transcript[1] == b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
    assert transcript[3] is True and transcript[4] == b"+OK\r\n"


def test_script_kill_does_not_stop_a_function_nor_function_kill_a_script():
    def scenario(server):
        caller = send(server.port, ["EVAL", "local i = 0 while true do i = i + 1 end", "0"])
        other = wait_busy(server.port)
        return [other.call("FUNCTION", "KILL"), other.call("FUNCTION", "STATS"), other.call("SCRIPT", "KILL"), caller.reply()]
    same_on_both(scenario)


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_function_api(pair, protocol):
    """redis-py's function commands get the same results from both servers."""
    import redis

    def session(server):
        r = redis.Redis(port=server.port, protocol=protocol)
        r.function_flush()
        results = [r.function_load(NAMED), r.function_load(ECHO, replace=True), r.fcall("myfunc", 0, "hi"), r.fcall_ro("g", 0),
                   r.function_list(library="y", withcode=True)]
        payload = r.function_dump()
        r.function_flush()
        results += [r.function_restore(payload), r.fcall("myfunc", 0, "again")]
        try:
            r.fcall("nosuch", 0)
        except redis.ResponseError as error:
            results.append(str(error))
        pipe = r.pipeline(transaction=True)
        pipe.fcall("myfunc", 0, "in-multi")
        pipe.set("k", "v")
        results.append(pipe.execute())
        r.close()
        return results

    ours, theirs = session(pair[0]), session(pair[1])
    assert ours == theirs
    assert ours[2] == b"hi" and ours[-1] == [b"in-multi", True]
