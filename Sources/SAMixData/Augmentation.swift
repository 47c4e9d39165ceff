import SAMixCore
import SAMixOps
import SAMixNN

/// Training-time augmentation: random crop with zero padding, then random horizontal flip
/// (the standard CIFAR recipe, torchvision's `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()`).
///
/// The crop pads each side of the uint8 image with `padding` black (0) pixels and cuts out an
/// H×W window at a random offset, so a padded pixel becomes the normalised value of 0 in its
/// channel, as in torchvision where padding happens before `Normalize`.
public struct Augmentation: Sendable, Equatable {
    /// Pixels of zero padding on each side for the random crop (0 disables cropping).
    public let padding: Int
    /// Whether to flip horizontally with probability 1/2.
    public let horizontalFlip: Bool

    public init(padding: Int, horizontalFlip: Bool) throws {
        guard padding >= 0 && padding <= 4096 else {
            throw SAMixError.invalidArgument("crop padding \(padding) must be in 0...4096")
        }
        self.padding = padding
        self.horizontalFlip = horizontalFlip
    }

    private init(unchecked padding: Int, _ flip: Bool) {
        self.padding = padding
        horizontalFlip = flip
    }

    /// No augmentation.
    public static let none = Augmentation(unchecked: 0, false)
    /// CIFAR: pad 4 + random crop, horizontal flip.
    public static let cifar = Augmentation(unchecked: 4, true)

    /// Whether this augmentation changes anything.
    public var isIdentity: Bool { padding == 0 && !horizontalFlip }

    /// The random choices for one image.
    public struct Params: Sendable, Equatable {
        /// Top-left corner of the crop window in the padded image, in `0...2*padding`
        /// (`padding, padding` is the un-shifted image).
        public var offsetY: Int
        public var offsetX: Int
        /// Whether the crop is mirrored left–right.
        public var flip: Bool

        public init(offsetY: Int, offsetX: Int, flip: Bool) {
            self.offsetY = offsetY
            self.offsetX = offsetX
            self.flip = flip
        }
    }

    /// Draws one image's parameters: crop offset y, then x (each uniform in `0...2*padding`, only
    /// if `padding > 0`), then the flip bit (only if `horizontalFlip`).
    public func draw(_ rng: inout SplitMix64) -> Params {
        var p = Params(offsetY: padding, offsetX: padding, flip: false)
        if padding > 0 {
            p.offsetY = rng.int(below: 2 * padding + 1)
            p.offsetX = rng.int(below: 2 * padding + 1)
        }
        if horizontalFlip { p.flip = rng.next() >> 63 == 1 }
        return p
    }
}
