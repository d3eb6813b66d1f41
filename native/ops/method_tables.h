// Which PKCS#11 functions the PKCS11 class has, by group. Each group's file adds its
// operations (and their promise variants) to the table.
#pragma once

#include "runner.h"

namespace p11 {

void AddGeneralMethods(MethodTable& table);  // C_GetInfo
void AddSlotMethods(MethodTable& table);     // slots, tokens, mechanisms, PINs, slot events
void AddSessionMethods(MethodTable& table);  // sessions, login, operation state
void AddObjectMethods(MethodTable& table);   // create, copy, destroy, attributes, find
void AddCipherMethods(MethodTable& table);   // encrypt, decrypt
void AddDigestMethods(MethodTable& table);
void AddSignMethods(MethodTable& table);     // sign, sign-recover, and the one-hop sign()
void AddVerifyMethods(MethodTable& table);   // verify, verify-recover, and the one-hop verify()
void AddDualMethods(MethodTable& table);     // the four dual-function updates
void AddKeyMethods(MethodTable& table);      // generate, wrap, unwrap, derive
void AddRandomMethods(MethodTable& table);   // random, and the legacy parallel functions

const MethodTable& AllMethods();

}  // namespace p11
