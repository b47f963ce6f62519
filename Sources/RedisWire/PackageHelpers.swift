// Small conversions that every module of the package needs, written once.

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return whole &+ attoseconds / 1_000_000_000
    }

    /// The duration in seconds, as a floating-point number.
    package var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole milliseconds, rounded up (PX takes milliseconds).
    package var millisecondsRoundedUp: Int64 {
        let nanos = nanoseconds
        return nanos / 1_000_000 + (nanos % 1_000_000 > 0 ? 1 : 0)
    }

    /// The duration in whole seconds, any fraction rounded up (for `Retry-After`).
    package var secondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hexadecimal, two ASCII digits per byte.
    package var hexDigits: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0xF))
        }
        return out
    }

    /// The bytes as a lowercase hexadecimal string.
    package var hexString: String { String(decoding: hexDigits, as: UTF8.self) }
}

private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}
