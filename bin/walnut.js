#!/usr/bin/env node
import '../dist/bundle/walnut.mjs';
