// `import NovaCache` is enough to use the library: the client types its API mentions (`RedisURL`,
// `RedisClient`, `RedisConnectionPool.Configuration`, `RedisClient.TimeToLive`) come with it.
@_exported public import NovaClient
