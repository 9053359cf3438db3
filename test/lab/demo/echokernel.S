/*
 * A multiboot stand-in kernel for the lab: it prints the command line and
 * the module strings the boot loader (iPXE) passed it on COM1, then halts.
 * The lab serves it as vmlinuz so that the kernel command line rendered by
 * the install script is visible on the VM's serial console.
 *
 * as --32 -o echokernel.o echokernel.S
 * ld -m elf_i386 -Ttext=0x100000 --oformat=binary -o vmlinuz echokernel.o
 */
	.set	MB_MAGIC, 0x1BADB002
	.set	MB_FLAGS, 0x00010000	/* addresses in the header (a.out kludge) */
	.set	COM1, 0x3f8

	.text
	.code32
	.globl	_start
header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
	.long	header		/* header_addr */
	.long	header		/* load_addr */
	.long	end		/* load_end_addr */
	.long	end		/* bss_end_addr */
	.long	_start		/* entry_addr */

_start:
	cli
	mov	$stack_top, %esp
	cmp	$0x2BADB002, %eax
	jne	halt
	mov	%ebx, %ebp		/* multiboot information */
	mov	$msg_cmdline, %esi
	call	puts
	testl	$4, (%ebp)		/* flags: cmdline valid */
	jz	1f
	mov	16(%ebp), %esi
	call	puts
1:	mov	$crlf, %esi
	call	puts
	testl	$8, (%ebp)		/* flags: mods valid */
	jz	3f
	mov	20(%ebp), %ecx		/* mods_count */
	mov	24(%ebp), %edi		/* mods_addr */
2:	test	%ecx, %ecx
	jz	3f
	mov	$msg_module, %esi
	call	puts
	mov	8(%edi), %esi		/* module string */
	test	%esi, %esi
	jz	4f
	call	puts
4:	mov	$crlf, %esi
	call	puts
	add	$16, %edi
	dec	%ecx
	jmp	2b
3:	mov	$msg_end, %esi
	call	puts
halt:	cli
	hlt
	jmp	halt

/* puts writes the NUL-terminated string at %esi to COM1. */
puts:	push	%eax
	push	%edx
5:	lodsb
	test	%al, %al
	jz	7f
	mov	%al, %ah
	mov	$COM1+5, %dx
6:	inb	%dx, %al		/* wait for the transmit holding register */
	test	$0x20, %al
	jz	6b
	mov	%ah, %al
	mov	$COM1, %dx
	outb	%al, %dx
	jmp	5b
7:	pop	%edx
	pop	%eax
	ret

msg_cmdline:	.asciz	"\r\nVMPROV-CMDLINE: "
msg_module:	.asciz	"VMPROV-MODULE: "
msg_end:	.asciz	"VMPROV-END\r\n"
crlf:		.asciz	"\r\n"
	.align	16
stack:	.space	1024
stack_top:
end:
