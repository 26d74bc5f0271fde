// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Sandbox stand-in for the Sepolia test USDC that dYdX v3 used as collateral.
/// @notice A plain 6-decimal ERC-20. Like the Sepolia test token, anyone may `setBalance`;
///         `mint` is the sandbox's faucet and is open as well. Never deploy this anywhere real.
/// @dev Placed with anvil_setCode: no constructor, no immutables, metadata are constants.
///      The storage layout is relied upon by already-installed sandboxes: append, never reorder.
contract UsdcStandIn {
    string public constant name = "USD Coin";
    string public constant symbol = "USDC";
    uint8 public constant decimals = 6;

    // slot 0
    uint256 public totalSupply;
    // slot 1
    mapping(address => uint256) public balanceOf;
    // slot 2
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function approve(address spender, uint256 value) external returns (bool) {
        require(spender != address(0), "ERC20: approve to the zero address");
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        move(msg.sender, to, value);
        return true;
    }

    /// @dev An allowance of 2^256-1 is treated as unlimited and not decreased.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "ERC20: transfer amount exceeds allowance");
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        move(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external returns (bool) {
        require(to != address(0), "ERC20: mint to the zero address");
        totalSupply += value;
        unchecked {
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
        return true;
    }

    /// @notice Sets `account`'s balance outright (as the Sepolia test token allows); the change
    ///         is logged as a mint or burn so that indexers following Transfer stay consistent.
    function setBalance(address account, uint256 value) external {
        require(account != address(0), "ERC20: zero address");
        uint256 current = balanceOf[account];
        if (value > current) {
            totalSupply += value - current;
            emit Transfer(address(0), account, value - current);
        } else if (value < current) {
            totalSupply -= current - value;
            emit Transfer(account, address(0), current - value);
        }
        balanceOf[account] = value;
    }

    function move(address from, address to, uint256 value) internal {
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 fromBalance = balanceOf[from];
        require(fromBalance >= value, "ERC20: transfer amount exceeds balance");
        unchecked {
            balanceOf[from] = fromBalance - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
