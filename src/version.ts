/** Leg records. 2: keyed ids (id, callId, legId) and lastApp; later changes of this version only add optional fields. */
export const SCHEMA_VERSION = 2;
