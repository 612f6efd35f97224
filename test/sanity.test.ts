import t from 'tap';
import { SCHEMA_VERSION } from '../src/version.js';
t.equal(SCHEMA_VERSION, 1);
