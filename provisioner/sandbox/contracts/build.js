#!/usr/bin/env node
// Compiles the sandbox's stand-in contracts with npm's solc (pinned in package.json) and writes
// artifacts/<ContractName>.json. The artifacts are committed; `make contracts` rebuilds them.
// Output is deterministic: same sources and compiler give the same bytes.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const ARTIFACTS = path.join(HERE, "artifacts");
const SOURCES = {
  "StarkPerpetualStandIn.sol": ["StarkPerpetualStandIn"],
  "UsdcStandIn.sol": ["UsdcStandIn"],
  "Multicall3.sol": ["Multicall3"],
};

function fail(message) {
  process.stderr.write(`build.js: ${message}\n`);
  process.exit(1);
}

function strip0x(hex) {
  return hex.startsWith("0x") ? hex.slice(2) : hex;
}

function standardInput() {
  const sources = {};
  for (const file of Object.keys(SOURCES)) {
    sources[file] = { content: fs.readFileSync(path.join(HERE, file), "utf8") };
  }
  return {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: "paris",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: {
        "*": {
          "*": [
            "abi",
            "evm.bytecode.object",
            "evm.deployedBytecode.object",
            "evm.deployedBytecode.immutableReferences",
          ],
        },
      },
    },
  };
}

function compile() {
  const output = JSON.parse(solc.compile(JSON.stringify(standardInput())));
  const diagnostics = output.errors || [];
  for (const d of diagnostics) {
    process.stderr.write(`${d.formattedMessage || d.message}\n`);
  }
  const errors = diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) fail(`${errors.length} compiler error(s), no artifacts written`);
  return output;
}

function artifact(output, file, name) {
  const contract = output.contracts && output.contracts[file] && output.contracts[file][name];
  if (!contract) fail(`${file}:${name} missing from compiler output`);
  const bytecode = strip0x(contract.evm.bytecode.object);
  const deployed = strip0x(contract.evm.deployedBytecode.object);
  if (!bytecode || !deployed) fail(`${name}: empty bytecode (abstract contract or interface?)`);
  // anvil_setCode runs no constructor, so immutables would read as zero: forbid them.
  const immutables = contract.evm.deployedBytecode.immutableReferences || {};
  if (Object.keys(immutables).length > 0) fail(`${name}: immutables do not survive anvil_setCode`);
  return {
    contractName: name,
    sourceName: file,
    compiler: `solc-js ${solc.version()}`,
    settings: { evmVersion: "paris", optimizer: { enabled: true, runs: 200 } },
    abi: contract.abi,
    bytecode: `0x${bytecode}`,
    deployedBytecode: `0x${deployed}`,
  };
}

function main() {
  const output = compile();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const [file, names] of Object.entries(SOURCES)) {
    for (const name of names) {
      const target = path.join(ARTIFACTS, `${name}.json`);
      fs.writeFileSync(target, `${JSON.stringify(artifact(output, file, name), null, 2)}\n`);
      process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);
    }
  }
}

main();
