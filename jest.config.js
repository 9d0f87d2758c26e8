/** Jest runs the TypeScript sources directly; tsconfig's isolatedModules makes ts-jest transpile only (npm run typecheck does the type check). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/components'],
  testMatch: ['**/*.test.ts'],
  // test/arm64 runs on its own (`npm run test:arm64`, scripts/arm64/ci.sh): nine components under
  // QEMU beside two other test files would make all of them slow.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/arm64/'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  testTimeout: 60000,
  // Integration tests start real processes and sockets; two workers match the 2-core CI machine.
  maxWorkers: 2,
};
