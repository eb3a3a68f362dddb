//! The PVH entry: the Xen ELF note that names it, and the stub that takes
//! the CPU from 32-bit protected mode without paging (ebx → start info) to
//! 64-bit mode with the low 4 GiB identity-mapped and a stack; then
//! `fw_main` in the program.  Also the interrupt stubs, which save what Rust
//! code may clobber and call `fw_interrupt(vector)`.
//!
//! The programs use no SSE (see .cargo/config.toml), so the stubs save
//! only the general registers and the entry leaves SSE off.

core::arch::global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* namesz */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .balign 4

    .section .text.pvh_start, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov esi, ebx
    mov eax, offset pml4
    mov cr3, eax
    mov eax, cr4
    or eax, 1 << 5                            /* PAE */
    mov cr4, eax
    mov ecx, 0xC0000080                       /* EFER */
    rdmsr
    or eax, 1 << 8                            /* LME */
    wrmsr
    mov eax, cr0
    and eax, ~(1 << 2)                        /* EM off */
    or eax, (1 << 31) | (1 << 1) | 1          /* PG, MP, PE */
    mov cr0, eax
    lgdt [gdt_pointer]
    .byte 0xea                                /* ljmp 0x08:long_mode */
    .long long_mode
    .word 0x08

    .code64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    lea rsp, [rip + stack_top]
    mov edi, esi
    call fw_main
2:  cli
    hlt
    jmp 2b

    .macro interrupt_stub name, vector
    .global \name
\name:
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    mov edi, \vector
    call fw_interrupt
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    iretq
    .endm

    interrupt_stub fw_vector_nmi, 2
    interrupt_stub fw_vector_irq0, 0x30
    interrupt_stub fw_vector_irq1, 0x31
    interrupt_stub fw_vector_irq2, 0x32
    interrupt_stub fw_vector_irq3, 0x33
    interrupt_stub fw_vector_spurious, 0xff
    interrupt_stub fw_vector_other, 0xfe

    .section .data.page_tables, "aw"
    .balign 4096
pml4:
    .quad pdpt + 0x3
    .fill 511, 8, 0
pdpt:
    .quad page_directories + 0x3
    .quad page_directories + 0x1000 + 0x3
    .quad page_directories + 0x2000 + 0x3
    .quad page_directories + 0x3000 + 0x3
    .fill 508, 8, 0
page_directories:                             /* 2048 × 2 MiB = 4 GiB */
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x83
    .set page, page + 1
    .endr

    .section .data, "aw"
    .balign 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff                  /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long gdt
    .balign 16
stack:
    .fill 32768, 1, 0
stack_top:
    "#
);

extern "C" {
    pub fn fw_vector_nmi();
    pub fn fw_vector_irq0();
    pub fn fw_vector_irq1();
    pub fn fw_vector_irq2();
    pub fn fw_vector_irq3();
    pub fn fw_vector_spurious();
    pub fn fw_vector_other();
}
