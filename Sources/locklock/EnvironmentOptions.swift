import Foundation

/// `serve` and `dev` options from the environment: `LOCKLOCK_ANONYMOUS_RATE=50` stands for
/// `--anonymous-rate 50` when the command line does not give that option, so a container or a
/// systemd unit can configure the server without a long command line. A repeatable option
/// takes its values separated by `;` (`LOCKLOCK_TRUSTED_PROXY=10.0.0.0/8;192.168.0.0/16`); a
/// flag with an inverse takes `true` or `false` (`LOCKLOCK_DELAYED_REJOIN=false`).
/// `serve` also takes its masters' connection options (`LOCKLOCK_REDIS_TLS_CA`, ...);
/// `LOCKLOCK_MASTERS` is read by the master options themselves.
enum EnvironmentOptions {
    /// One option, as the command line spells it.
    struct Option: Equatable {
        enum Kind { case single, repeatable, flag }
        let name: String
        let kind: Kind

        /// `LOCKLOCK_ANONYMOUS_RATE` for `anonymous-rate`.
        var variable: String { "LOCKLOCK_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    /// ``ServeOptions``'s options, read from its declaration, so that a new option is
    /// covered without a list to keep in step.
    static let serveOptions = options(of: ServeOptions())

    /// ``MasterOptions``'s options but `--masters`, which reads `LOCKLOCK_MASTERS` itself.
    static let masterOptions = options(of: MasterOptions()).filter { $0.name != "masters" }

    /// The options `subcommand` takes from the environment.
    static func options(for subcommand: String) -> [Option] {
        switch subcommand {
        case "serve": serveOptions + masterOptions
        case "dev": serveOptions
        case "run", "acquire", "release", "masters": masterOptions + [Option(name: "instance-timeout", kind: .single)]
        default: []
        }
    }

    /// The options an `ArgumentParser` options type declares.
    private static func options(of declaration: Any) -> [Option] {
        Mirror(reflecting: declaration).children.compactMap { child in
            guard let label = child.label, label.hasPrefix("_") else { return nil }
            let type = String(describing: Swift.type(of: child.value))
            let kind: Option.Kind = type.hasPrefix("Flag") ? .flag : type.hasPrefix("Option<Array") ? .repeatable : .single
            return Option(name: kebabCase(String(label.dropFirst())), kind: kind)
        }
    }

    /// `arguments` (without the program name) with the environment's options added after a
    /// `serve` or `dev` subcommand for every option the arguments do not give.
    static func merge(_ arguments: [String], environment: [String: String]) -> [String] {
        guard let subcommand = arguments.first else { return arguments }
        var added: [String] = []
        for option in options(for: subcommand) {
            guard let value = environment[option.variable], !value.isEmpty else { continue }
            let spellings = option.kind == .flag ? ["--\(option.name)", "--no-\(option.name)"] : ["--\(option.name)"]
            let given = arguments.contains { argument in spellings.contains { argument == $0 || argument.hasPrefix($0 + "=") } }
            guard !given else { continue }
            switch option.kind {
            // `--name=value`: a value such as -1 is then not read as an option.
            case .single: added.append("--\(option.name)=\(value)")
            case .repeatable: added += value.split(separator: ";").map { "--\(option.name)=\($0)" }
            case .flag: added.append(["false", "0", "no"].contains(value.lowercased()) ? "--no-\(option.name)" : "--\(option.name)")
            }
        }
        return [subcommand] + added + arguments.dropFirst()
    }

    private static func kebabCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                result += "-" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}
