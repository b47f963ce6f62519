import RedisWire
