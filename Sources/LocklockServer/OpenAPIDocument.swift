/// The OpenAPI 3.1 document served at `/v1/api/openapi.json`, with the server's configured
/// limits filled in. Tests check that it names every route the router serves, and the
/// conformance run validates it and fuzzes the live server against it.
import Foundation

enum OpenAPIDocument {
    static func json(maximumExpiresIn: Double, maximumWait: Double) -> String {
        let text =
            template
            .replacingOccurrences(of: "MAX_EXPIRES_IN", with: String(maximumExpiresIn))
            .replacingOccurrences(of: "MAX_WAIT", with: String(maximumWait))
        // The named-lock path is the UUID path with another parameter, names and the API key.
        guard var document = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
            var paths = document["paths"] as? [String: Any],
            let uuidItem = paths["/v1/api/lock/uuid/{uuid}"] as? [String: Any],
            let data = try? JSONSerialization.data(
                withJSONObject: { () -> [String: Any] in
                    paths["/v1/api/lock/key/{name}"] = namedLockItem(from: uuidItem)
                    document["paths"] = paths
                    return document
                }(),
                options: [.sortedKeys, .withoutEscapingSlashes]
            )
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    /// `/v1/api/lock/key/{name}` from `/v1/api/lock/uuid/{uuid}`.
    private static func namedLockItem(from item: [String: Any]) -> [String: Any] {
        var result: [String: Any] = ["parameters": [["$ref": "#/components/parameters/name"]]]
        for (method, value) in item where method != "parameters" {
            guard var operation = value as? [String: Any] else { continue }
            operation["operationId"] = (operation["operationId"] as? String)?.replacingOccurrences(of: "UUID", with: "Key")
            operation["summary"] = (operation["summary"] as? String)?.replacingOccurrences(of: "a UUID lock", with: "a named lock (Pro)")
            operation["security"] = [["apiKey": [String]()]]
            result[method] = operation
        }
        return result
    }

    private static let template = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Locklock REST API",
            "version": "1.0.0",
            "description": "Lock as a service: POST to acquire, DELETE to release, over Redlock."
          },
          "servers": [{"url": "/"}],
          "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "parameters": {
              "uuid": {
                "name": "uuid",
                "in": "path",
                "required": true,
                "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"}
              },
              "name": {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,200}$"}},
              "secretHeader": {"name": "Lock-Secret", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 256}},
              "ifMatchHeader": {
                "name": "If-Match",
                "in": "header",
                "required": false,
                "description": "The lock's fencing token (its ETag): the operation applies only to that acquisition; 412 otherwise.",
                "schema": {"type": "string", "pattern": "^\"?[1-9][0-9]{0,18}\"?$"}
              }
            },
            "schemas": {
              "Lock": {
                "type": "object",
                "required": ["lock", "expires_in", "expires_at", "has_secret"],
                "properties": {
                  "lock": {"type": "string"},
                  "expires_in": {"type": "number", "minimum": 0},
                  "expires_at": {"type": "string", "format": "date-time"},
                  "has_secret": {"type": "boolean"},
                  "fencing_token": {"type": "integer"},
                  "data": {}
                }
              },
              "Released": {
                "type": "object",
                "required": ["lock", "released"],
                "properties": {"lock": {"type": "string"}, "released": {"type": "boolean"}}
              },
              "AcquireRequest": {
                "type": "object",
                "properties": {
                  "secret": {"type": "string", "minLength": 1, "maxLength": 256},
                  "expires_in": {"type": "number", "minimum": 0.1, "maximum": MAX_EXPIRES_IN},
                  "data": {},
                  "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT}
                }
              },
              "ReleaseRequest": {"type": "object", "properties": {"secret": {"type": "string", "minLength": 1, "maxLength": 256}}},
              "ExtendRequest": {
                "type": "object",
                "required": ["expires_in"],
                "properties": {
                  "secret": {"type": "string", "minLength": 1, "maxLength": 256},
                  "expires_in": {"type": "number", "minimum": 0.1, "maximum": MAX_EXPIRES_IN}
                }
              },
              "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}
              },
              "Health": {"type": "object", "properties": {"status": {"type": "string"}}}
            },
            "responses": {
              "Lock": {
                "description": "The lock",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Lock"}}},
                "headers": {
                  "ETag": {"$ref": "#/components/headers/ETag"},
                  "Cache-Control": {"$ref": "#/components/headers/CacheControl"},
                  "RateLimit": {"$ref": "#/components/headers/RateLimit"},
                  "RateLimit-Policy": {"$ref": "#/components/headers/RateLimitPolicy"}
                }
              },
              "Problem": {
                "description": "An RFC 9457 problem",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                "headers": {
                  "Retry-After": {"$ref": "#/components/headers/RetryAfter"},
                  "Cache-Control": {"$ref": "#/components/headers/CacheControl"},
                  "RateLimit": {"$ref": "#/components/headers/RateLimit"},
                  "RateLimit-Policy": {"$ref": "#/components/headers/RateLimitPolicy"}
                }
              }
            },
            "headers": {
              "RetryAfter": {
                "description": "Seconds until the request may succeed: the holder's remaining TTL (409), the throttle's wait (429), or 1 (503).",
                "schema": {"type": "integer", "minimum": 1}
              },
              "RateLimit": {
                "description": "What is left of this client's allowance: limit, remaining, reset (draft-ietf-httpapi-ratelimit-headers); on every counted response.",
                "schema": {"type": "string"}
              },
              "RateLimitPolicy": {"description": "The allowance: burst and window.", "schema": {"type": "string"}},
              "CacheControl": {"description": "Always no-store: lock state must not be cached.", "schema": {"type": "string", "enum": ["no-store"]}},
              "ETag": {"description": "The fencing token, quoted: send it back in If-Match.", "schema": {"type": "string"}}
            }
          },
          "paths": {
            "/v1/api/lock/uuid/{uuid}": {
              "parameters": [{"$ref": "#/components/parameters/uuid"}],
              "post": {
                "operationId": "acquireUUID",
                "summary": "Acquire a UUID lock",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcquireRequest"}}}},
                "responses": {
                  "201": {"$ref": "#/components/responses/Lock"},
                  "200": {"$ref": "#/components/responses/Lock"},
                  "400": {"$ref": "#/components/responses/Problem"},
                  "401": {"$ref": "#/components/responses/Problem"},
                  "403": {"$ref": "#/components/responses/Problem"},
                  "409": {"$ref": "#/components/responses/Problem"},
                  "413": {"$ref": "#/components/responses/Problem"},
                  "422": {"$ref": "#/components/responses/Problem"},
                  "429": {"$ref": "#/components/responses/Problem"},
                  "503": {"$ref": "#/components/responses/Problem"}
                }
              },
              "delete": {
                "operationId": "releaseUUID",
                "summary": "Release a UUID lock",
                "parameters": [{"$ref": "#/components/parameters/secretHeader"}, {"$ref": "#/components/parameters/ifMatchHeader"}],
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReleaseRequest"}}}},
                "responses": {
                  "200": {"description": "Released", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Released"}}}},
                  "400": {"$ref": "#/components/responses/Problem"},
                  "401": {"$ref": "#/components/responses/Problem"},
                  "403": {"$ref": "#/components/responses/Problem"},
                  "404": {"$ref": "#/components/responses/Problem"},
                  "412": {"$ref": "#/components/responses/Problem"},
                  "413": {"$ref": "#/components/responses/Problem"},
                  "422": {"$ref": "#/components/responses/Problem"},
                  "429": {"$ref": "#/components/responses/Problem"},
                  "503": {"$ref": "#/components/responses/Problem"}
                }
              },
              "patch": {
                "operationId": "extendUUID",
                "summary": "Extend a UUID lock",
                "parameters": [{"$ref": "#/components/parameters/secretHeader"}, {"$ref": "#/components/parameters/ifMatchHeader"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExtendRequest"}}}},
                "responses": {
                  "200": {"$ref": "#/components/responses/Lock"},
                  "400": {"$ref": "#/components/responses/Problem"},
                  "401": {"$ref": "#/components/responses/Problem"},
                  "403": {"$ref": "#/components/responses/Problem"},
                  "404": {"$ref": "#/components/responses/Problem"},
                  "412": {"$ref": "#/components/responses/Problem"},
                  "413": {"$ref": "#/components/responses/Problem"},
                  "422": {"$ref": "#/components/responses/Problem"},
                  "429": {"$ref": "#/components/responses/Problem"},
                  "503": {"$ref": "#/components/responses/Problem"}
                }
              },
              "get": {
                "operationId": "statusUUID",
                "summary": "Status of a UUID lock",
                "responses": {
                  "200": {"$ref": "#/components/responses/Lock"},
                  "400": {"$ref": "#/components/responses/Problem"},
                  "401": {"$ref": "#/components/responses/Problem"},
                  "403": {"$ref": "#/components/responses/Problem"},
                  "404": {"$ref": "#/components/responses/Problem"},
                  "429": {"$ref": "#/components/responses/Problem"},
                  "503": {"$ref": "#/components/responses/Problem"}
                }
              }
            },
            "/livez": {
              "get": {
                "operationId": "livez",
                "responses": {"200": {"description": "Process up", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}
              }
            },
            "/readyz": {
              "get": {
                "operationId": "readyz",
                "responses": {
                  "200": {
                    "description": "A quorum is reachable",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
                  },
                  "503": {"$ref": "#/components/responses/Problem"}
                }
              }
            },
            "/metrics": {
              "get": {
                "operationId": "metrics",
                "responses": {"200": {"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}}
              }
            },
            "/v1/api/openapi.json": {
              "get": {
                "operationId": "openapi",
                "responses": {"200": {"description": "This document", "content": {"application/json": {"schema": {"type": "object"}}}}}
              }
            }
          }
        }
        """#
}
