// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Minimal Multicall3 for the sandbox, placed at the canonical 0xcA11bde05977b3631167028862bE2a173976CA11.
/// @notice Only `aggregate3` and `getEthBalance`, with Multicall3's ABI, so that batched chain reads
///         written for public networks work unchanged against anvil.
contract Multicall3 {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Calls each target in order; reverts if a call that may not fail does.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        uint256 length = calls.length;
        returnData = new Result[](length);
        for (uint256 i = 0; i < length; ++i) {
            Call3 calldata item = calls[i];
            (bool success, bytes memory data) = item.target.call(item.callData);
            require(success || item.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(success, data);
        }
    }

    function getEthBalance(address addr) external view returns (uint256 balance) {
        balance = addr.balance;
    }
}
