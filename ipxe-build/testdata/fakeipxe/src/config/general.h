/* fake iPXE config/general.h for the ipxebuild tests */
#define NET_PROTO_IPV6
#if defined ( PLATFORM_pcbios )
  #undef NET_PROTO_IPV6
#endif
#include <config/local/general.h>
