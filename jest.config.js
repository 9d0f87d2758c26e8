/** Jest runs the TypeScript sources directly; tsconfig's isolatedModules makes ts-jest transpile only (npm run typecheck does the type check). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/components'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  testTimeout: 60000,
  // Integration tests start real processes and sockets; two workers match the 2-core CI machine.
  maxWorkers: 2,
};
