// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Sandbox stand-in for dYdX v3's StarkEx perpetual exchange (StarkPerpetual v1.0 to StarkEx v3.0).
/// @notice Only the L1 surface that dydx-v3-python 2.1.0 touches, with the same checks, revert strings
///         and events (no indexed fields). See shared/reference/starkex-l1.md §3, §4 and §7.
/// @dev Placed with anvil_setCode, so no constructor runs and there are no immutables:
///      `initialize` sets the configuration once. The storage layout is relied upon by
///      already-installed sandboxes (anvil --state): append new variables, never reorder.
contract StarkPerpetualStandIn {
    /// STARK field prime p = 2^251 + 17 * 2^192 + 1.
    uint256 internal constant K_MODULUS =
        0x800000000000011000000000000000000000000000000000000000000000001;
    /// STARK curve y^2 = x^3 + ALPHA * x + BETA (mod p).
    uint256 internal constant K_BETA =
        0x6f21413efbe40de150e596d72f7a8c5609ad26c15c915c1f4cdfcb99cee9e89;
    uint256 internal constant QUANTUM = 1;
    address internal constant MODEXP_PRECOMPILE = address(0x05);
    bytes4 internal constant TRANSFER_FROM_SELECTOR = 0x23b872dd;

    // slot 0
    address internal governor;
    bool internal initialized;
    // slot 1
    address internal systemAssetToken;
    // slot 2
    uint256 internal systemAssetType;
    // slot 3: starkKey => ethKey
    mapping(uint256 => address) internal ethKeys;
    // slot 4
    mapping(address => bool) internal userAdmins;
    // slot 5: starkKey => assetType => vaultId => quantized amount
    mapping(uint256 => mapping(uint256 => mapping(uint256 => uint256))) internal pendingDeposits;

    event LogUserRegistered(address ethKey, uint256 starkKey, address sender);
    event LogDeposit(
        address depositorEthKey,
        uint256 starkKey,
        uint256 vaultId,
        uint256 assetType,
        uint256 nonQuantizedAmount,
        uint256 quantizedAmount
    );
    event LogUserAdminAdded(address userAdmin);
    event LogUserAdminRemoved(address userAdmin);

    modifier onlyGovernance() {
        require(initialized && msg.sender == governor, "ONLY_GOVERNANCE");
        _;
    }

    /// @notice One-time setup (stand-in only): the governor manages user admins; the system asset
    ///         is the ERC-20 `token` with quantum 1 and id `assetType`.
    function initialize(address newGovernor, address token, uint256 assetType) external {
        require(!initialized, "ALREADY_INITIALIZED");
        require(newGovernor != address(0), "INVALID_GOVERNOR");
        require(token != address(0), "BAD_TOKEN_ADDRESS");
        require(assetType != 0, "INVALID_ASSET_TYPE");
        governor = newGovernor;
        systemAssetToken = token;
        systemAssetType = assetType;
        initialized = true;
    }

    /// @notice Stand-in only: the configuration written by `initialize`.
    function standInConfig()
        external
        view
        returns (bool isInitialized, address governorAddress, address token, uint256 assetType)
    {
        return (initialized, governor, systemAssetToken, systemAssetType);
    }

    function mainIsGovernor(address user) external view returns (bool) {
        return initialized && user == governor;
    }

    // ---------------------------------------------------------------- users

    function registerUserAdmin(address newAdmin) external onlyGovernance {
        userAdmins[newAdmin] = true;
        emit LogUserAdminAdded(newAdmin);
    }

    function unregisterUserAdmin(address oldAdmin) external onlyGovernance {
        userAdmins[oldAdmin] = false;
        emit LogUserAdminRemoved(oldAdmin);
    }

    function isUserAdmin(address testedAdmin) public view returns (bool) {
        return userAdmins[testedAdmin];
    }

    function registerUser(address ethKey, uint256 starkKey, bytes calldata signature) external {
        require(starkKey != 0 && starkKey < K_MODULUS, "INVALID_STARK_KEY");
        require(ethKey != address(0), "INVALID_ETH_ADDRESS");
        require(ethKeys[starkKey] == address(0), "STARK_KEY_UNAVAILABLE");
        require(isOnCurve(starkKey), "INVALID_STARK_KEY");
        require(signature.length == 65, "INVALID_SIGNATURE");

        bytes32 digest = keccak256(abi.encodePacked("UserRegistration:", ethKey, starkKey));
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0) && isUserAdmin(signer), "INVALID_SIGNATURE");

        ethKeys[starkKey] = ethKey;
        emit LogUserRegistered(ethKey, starkKey, msg.sender);
    }

    function getEthKey(uint256 starkKey) public view returns (address ethKey) {
        ethKey = ethKeys[starkKey];
        require(ethKey != address(0), "USER_UNREGISTERED");
    }

    /// @dev x is the x coordinate of a curve point iff x^3 + x + beta is a non-zero square mod p
    ///      (Euler's criterion).
    function isOnCurve(uint256 starkKey) internal view returns (bool) {
        uint256 xCubed = mulmod(mulmod(starkKey, starkKey, K_MODULUS), starkKey, K_MODULUS);
        uint256 rhs = addmod(addmod(xCubed, starkKey, K_MODULUS), K_BETA, K_MODULUS);
        return fieldPow(rhs, (K_MODULUS - 1) / 2) == 1;
    }

    function fieldPow(uint256 base, uint256 exponent) internal view returns (uint256) {
        (bool success, bytes memory result) = MODEXP_PRECOMPILE.staticcall(
            abi.encode(uint256(32), uint256(32), uint256(32), base, exponent, K_MODULUS)
        );
        require(success && result.length == 32, "MODEXP_FAILED");
        return abi.decode(result, (uint256));
    }

    // ---------------------------------------------------------------- assets and deposits

    function getSystemAssetType() external view returns (uint256) {
        return systemAssetType;
    }

    function getQuantum(uint256) external pure returns (uint256 quantum) {
        return QUANTUM;
    }

    function isFrozen() public pure returns (bool frozen) {
        return false;
    }

    function getQuantizedDepositBalance(uint256 starkKey, uint256 assetId, uint256 vaultId)
        external
        view
        returns (uint256)
    {
        return pendingDeposits[starkKey][assetId][vaultId];
    }

    function getDepositBalance(uint256 starkKey, uint256 assetId, uint256 vaultId)
        external
        view
        returns (uint256)
    {
        return pendingDeposits[starkKey][assetId][vaultId] * QUANTUM;
    }

    function deposit(uint256 starkKey, uint256 assetType, uint256 vaultId, uint256 quantizedAmount)
        external
    {
        require(!isFrozen(), "STATE_IS_FROZEN");
        require(ethKeys[starkKey] != address(0), "INVALID_STARK_KEY");
        require(initialized && assetType == systemAssetType, "ASSET_TYPE_NOT_REGISTERED");

        uint256 pending = pendingDeposits[starkKey][assetType][vaultId];
        unchecked {
            require(pending + quantizedAmount >= pending, "DEPOSIT_OVERFLOW");
            pendingDeposits[starkKey][assetType][vaultId] = pending + quantizedAmount;
        }

        uint256 amount = quantizedAmount * QUANTUM;
        transferIn(amount);

        emit LogDeposit(msg.sender, starkKey, vaultId, assetType, amount, quantizedAmount);
    }

    /// @dev The real contract's checks: the token must have code, a revert's raw data becomes the
    ///      reason string, returned data must be `true`, and the balance must grow by exactly `amount`.
    function transferIn(uint256 amount) internal {
        address token = systemAssetToken;
        require(token.code.length > 0, "BAD_TOKEN_ADDRESS");
        uint256 balanceBefore = IBalanceOf(token).balanceOf(address(this));

        (bool success, bytes memory returndata) = token.call(
            abi.encodeWithSelector(TRANSFER_FROM_SELECTOR, msg.sender, address(this), amount)
        );
        require(success, string(returndata));
        if (returndata.length > 0) {
            require(
                returndata.length >= 32 && abi.decode(returndata, (uint256)) == 1,
                "TOKEN_OPERATION_FAILED"
            );
        }

        uint256 balanceAfter = IBalanceOf(token).balanceOf(address(this));
        require(balanceAfter >= balanceBefore, "OVERFLOW");
        require(balanceAfter - balanceBefore == amount, "INCORRECT_AMOUNT_TRANSFERRED");
    }
}

interface IBalanceOf {
    function balanceOf(address account) external view returns (uint256);
}
