import Foundation

/// The OpenAPI 3.1 document served at `/v1/api/openapi.json`: `openapi.json` beside this file,
/// compiled into the binary, with the server's configured limits filled in, and the named-lock
/// and permit paths derived from the UUID path. Tests check that it names every route the router serves and
/// every status `Docs/http-api.md` lists; the conformance run validates it and fuzzes the live
/// server against it.
enum OpenAPIDocument {
    /// The document for a server with these limits.
    static func json(maximumExpiresIn: Double, maximumWait: Double) -> String {
        guard var document = (try? JSONSerialization.jsonObject(with: Data(PackageResources.openapi_json))) as? [String: Any] else {
            preconditionFailure("openapi.json is not a JSON object")
        }
        var components = document["components"] as? [String: Any] ?? [:]
        var schemas = components["schemas"] as? [String: Any] ?? [:]
        for (schema, field, maximum) in [
            ("AcquireRequest", "expires_in", maximumExpiresIn), ("AcquireRequest", "wait", maximumWait),
            ("ExtendRequest", "expires_in", maximumExpiresIn), ("AcquireRequest", "lock_delay", maximumExpiresIn),
            ("ExtendRequest", "lock_delay", maximumExpiresIn), ("AcquirePermitRequest", "expires_in", maximumExpiresIn),
            ("AcquirePermitRequest", "wait", maximumWait), ("AcquirePermitRequest", "lock_delay", maximumExpiresIn),
        ] {
            schemas[schema] = settingMaximum(maximum, of: field, in: schemas[schema] as? [String: Any] ?? [:])
        }
        components["schemas"] = schemas
        document["components"] = components
        var paths = document["paths"] as? [String: Any] ?? [:]
        if var uuidItem = paths["/v1/api/lock/uuid/{uuid}"] as? [String: Any] {
            uuidItem["get"] = settingWatchMaximum(maximumWait, in: uuidItem["get"] as? [String: Any] ?? [:])
            paths["/v1/api/lock/uuid/{uuid}"] = uuidItem
            let namedItem = namedLockItem(from: uuidItem)
            paths["/v1/api/lock/key/{name}"] = namedItem
            paths["/v1/api/semaphore/key/{name}/{permit}"] = permitItem(from: namedItem)
        }
        document["paths"] = paths
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// `schema` with `properties.field.maximum` set to `maximum`.
    private static func settingMaximum(_ maximum: Double, of field: String, in schema: [String: Any]) -> [String: Any] {
        var schema = schema
        var properties = schema["properties"] as? [String: Any] ?? [:]
        var property = properties[field] as? [String: Any] ?? [:]
        property["maximum"] = maximum
        properties[field] = property
        schema["properties"] = properties
        return schema
    }

    /// The status operation with its `wait` query parameter's maximum set.
    private static func settingWatchMaximum(_ maximum: Double, in operation: [String: Any]) -> [String: Any] {
        var operation = operation
        operation["parameters"] = (operation["parameters"] as? [[String: Any]] ?? []).map { parameter in
            guard parameter["name"] as? String == "wait" else { return parameter }
            var parameter = parameter
            var schema = parameter["schema"] as? [String: Any] ?? [:]
            schema["maximum"] = maximum
            parameter["schema"] = schema
            return parameter
        }
        return operation
    }

    /// `/v1/api/semaphore/key/{name}/{permit}` from `/v1/api/lock/key/{name}`: a permit is
    /// released, extended and queried as a named lock is.
    private static func permitItem(from item: [String: Any]) -> [String: Any] {
        var result: [String: Any] = ["parameters": [["$ref": "#/components/parameters/name"], ["$ref": "#/components/parameters/permit"]]]
        for method in ["delete", "patch", "get"] {
            guard var operation = item[method] as? [String: Any] else { continue }
            operation["operationId"] = (operation["operationId"] as? String)?.replacingOccurrences(of: "Key", with: "Permit")
            operation["summary"] = (operation["summary"] as? String)?.replacingOccurrences(of: "a named lock", with: "a semaphore's permit")
            result[method] = operation
        }
        return result
    }

    /// `/v1/api/lock/key/{name}` from `/v1/api/lock/uuid/{uuid}`: another parameter, names and
    /// the API key.
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
}
