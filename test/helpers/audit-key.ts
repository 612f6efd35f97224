// The audit key of the test suite: keys files written by the helpers carry it
// (auditKey), so a test can verify what a gateway under test wrote.
export const TEST_AUDIT_KEY_HEX = '5a17c0de'.repeat(8);
export const TEST_AUDIT_KEY = Buffer.from(TEST_AUDIT_KEY_HEX, 'hex');
