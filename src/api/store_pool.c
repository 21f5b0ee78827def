/* store_pool.c — see store_pool.h. */
#include "store_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "tasks/store_open.h"

struct store_pool {
	const struct boxd_config *cfg;
	pthread_mutex_t mu;   /* guards every field below */
	pthread_cond_t freed;
	struct store **idle;
	int n_idle;
	int n_open;
	int max;
};

int store_pool_new(const struct boxd_config *cfg, int max, struct store_pool **ret)
{
	struct store_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->idle = calloc((size_t)max, sizeof(*p->idle));
	if (!p->idle) {
		free(p);
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->max = max;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->freed, NULL);
	*ret = p;
	return 0;
}

void store_pool_free(struct store_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_idle; i++)
		store_close(p->idle[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->freed);
	free(p->idle);
	free(p);
}

int store_pool_get(struct store_pool *p, struct store **ret, char *err, size_t errlen)
{
	pthread_mutex_lock(&p->mu);
	while (p->n_idle == 0 && p->n_open >= p->max)
		pthread_cond_wait(&p->freed, &p->mu);
	if (p->n_idle > 0) {
		*ret = p->idle[--p->n_idle];
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	p->n_open++;
	pthread_mutex_unlock(&p->mu);

	/* Open outside the mutex: it may take a while on a server database. */
	int r = store_open_config(p->cfg, STORE_OPEN_NO_MIGRATE, ret, err, errlen);
	if (r < 0) {
		pthread_mutex_lock(&p->mu);
		p->n_open--;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->mu);
	}
	return r;
}

void store_pool_put(struct store_pool *p, struct store *s, bool broken)
{
	if (!s)
		return;
	store_rollback(s); /* a handler that bailed out mid-transaction */
	pthread_mutex_lock(&p->mu);
	if (broken) {
		p->n_open--;
		pthread_mutex_unlock(&p->mu);
		store_close(s);
		pthread_mutex_lock(&p->mu);
	} else {
		p->idle[p->n_idle++] = s;
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->mu);
}
