@_exported import class RedisWire.EventLoopTaskExecutor
// The RedisWire types that Redlock's API takes, so that users write `import Redlock` alone.
@_exported import struct RedisWire.RedisConnectionConfiguration
@_exported import struct RedisWire.RedisEndpoint
@_exported import struct RedisWire.RedisServerAddress
@_exported import struct RedisWire.RedisTLSConfiguration
@_exported import enum RedisWire.RedisTLSFailure
