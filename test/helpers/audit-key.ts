// The audit key of the test suite: keys files written by the helpers carry it
// (auditKey), so a test can verify what a gateway under test wrote.
export const TEST_AUDIT_KEY_HEX = '5a17c0de'.repeat(8);
export const TEST_AUDIT_KEY = Buffer.from(TEST_AUDIT_KEY_HEX, 'hex');

// The storage key of the test suite (encryption at rest of the audit log, the
// consent store and the suppression lists): beside the audit key wherever the
// helpers put one, so a gateway under test starts and a test can open its stores.
export const TEST_STORAGE_KEY_HEX = '0123456789abcdef'.repeat(4);
export const TEST_STORAGE_KEY = Buffer.from(TEST_STORAGE_KEY_HEX, 'hex');
