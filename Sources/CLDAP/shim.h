#ifndef SVCPKG_CLDAP_SHIM_H
#define SVCPKG_CLDAP_SHIM_H
#include <lber.h>
#include <ldap.h>
#endif
