import XCTest
import SAMix
@testable import SAMixCore
@testable import SAMixOps
@testable import SAMixNN
@testable import SAMixData
@testable import SAMixMixing
@testable import SAMixTraining

final class TensorTests: XCTestCase {
    func testBroadcastAdd() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = try Tensor([10, 20, 30], shape: [3])
        XCTAssertEqual(try (a + b).scalars, [11, 22, 33, 14, 25, 36])
    }
}
