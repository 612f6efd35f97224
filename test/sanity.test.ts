import t from 'tap';
import { SCHEMA_VERSION } from '../src/version.js';
// Version 2: keyed ids and lastApp (README "Record schema versions").
t.equal(SCHEMA_VERSION, 2);
